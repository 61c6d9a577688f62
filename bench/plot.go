package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Chart geometry, in SVG user units (pixels).
const (
	plotColumns   = 2
	plotPanelW    = 480
	plotMargin    = 20
	plotHeaderH   = 64
	plotTitleH    = 24
	plotCaptionH  = 16
	plotRowH      = 18
	plotAxisH     = 16
	plotPanelGap  = 14
	plotLabelW    = 112 // system names, right-aligned
	plotBarW      = 192 // the scale, from 1/plotRange to plotRange times the reference
	plotBarHeight = 12
	plotRange     = 3 // doublings shown either side of the reference; longer bars are cut
)

// Bar colours: peerwire, the family's reference, go-libp2p, anything else.
const (
	colourPeerwire  = "#2b6cb0"
	colourReference = "#4a5568"
	colourLibp2p    = "#dd6b20"
	colourOther     = "#a0aec0"
)

// families returns the system families in chart order, each with its systems (peerwire's
// first) and its reference: the target reference of the family's peerwire system.
func families() []family {
	var out []family
	for _, s := range Systems() {
		i := 0
		for i < len(out) && out[i].name != s.Family {
			i++
		}
		if i == len(out) {
			out = append(out, family{name: s.Family})
		}
		out[i].systems = append(out[i].systems, s)
		if out[i].reference == "" && len(s.References) > 0 {
			out[i].reference = s.References[0]
		}
	}
	return out
}

type family struct {
	name      string
	reference string
	systems   []System
}

// relative is the figure of system for metric relative to ref, inverted when lower is
// better (so above 1 is always better); the reference itself is 1.
func (r *Report) relative(metric, system, ref string) (float64, bool) {
	if system == ref {
		v, ok := r.Value(metric, system)
		return 1, ok && v.Value > 0
	}
	return r.Ratio(metric, system, ref)
}

// WriteSVG draws the report as an SVG chart: one panel per metric, in which every system's
// figure is shown relative to its family's reference (QUIC systems to quic-go, TCP systems to
// TLS over TCP), inverted where lower is better, on a logarithmic scale centred on the
// reference: a bar to the right is better than the reference, to the left worse, and
// halving and doubling are the same length. Bars beyond 8× either way are cut and end in an
// arrow. Each bar is labelled with the ratio and the absolute figure.
func (r *Report) WriteSVG(w io.Writer) error {
	fams := families()
	metrics := Metrics()
	rows := 0
	for _, f := range fams {
		rows += len(f.systems)
	}
	panelH := plotTitleH + len(fams)*plotCaptionH + rows*plotRowH + plotAxisH + plotPanelGap
	panelRows := (len(metrics) + plotColumns - 1) / plotColumns
	width := 2*plotMargin + plotColumns*plotPanelW
	height := plotHeaderH + panelRows*panelH + plotMargin

	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	var refs []string
	for _, f := range fams {
		refs = append(refs, strings.ToUpper(f.name)+" systems ÷ "+f.reference)
	}
	text(&b, plotMargin, 22, "start", `font-size="15" font-weight="bold"`,
		"peerwire beside its references: "+strings.Join(refs, ", ")+"; right of the line is better")
	text(&b, plotMargin, 40, "start", `fill="#4a5568"`, r.Footer())
	legend := []struct{ colour, label string }{
		{colourPeerwire, "peerwire"}, {colourReference, "family reference (1×)"}, {colourLibp2p, "go-libp2p"},
		{colourOther, "other reference"}, {"", "logarithmic scale: each grid line doubles or halves"},
	}
	x := plotMargin
	for _, l := range legend {
		if l.colour != "" {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/>`+"\n", x, 48, l.colour)
			x += 14
		}
		text(&b, x, 57, "start", "", l.label)
		x += 16 + 6*utf8.RuneCountInString(l.label)
	}

	for i, m := range metrics {
		px := plotMargin + (i%plotColumns)*plotPanelW
		py := plotHeaderH + (i/plotColumns)*panelH
		r.writePanel(&b, m, fams, px, py, panelH)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writePanel draws one metric's panel with its top left corner at (px, py).
func (r *Report) writePanel(b *strings.Builder, m Metric, fams []family, px, py, panelH int) {
	better := "higher is better"
	if !m.HigherIsBetter {
		better = "lower is better, ratio inverted"
	}
	fmt.Fprintf(b, `<g class="panel" data-metric="%s">`+"\n", esc(m.Name))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f7fafc" stroke="#e2e8f0"/>`+"\n",
		px+2, py, plotPanelW-4, panelH-plotPanelGap/2)
	text(b, px+8, py+16, "start", `font-size="13" font-weight="bold"`, m.Name)
	text(b, px+plotPanelW-8, py+16, "end", `fill="#4a5568"`, m.Unit+", "+better)

	barX := float64(px + plotLabelW)
	centre := barX + plotBarW/2
	unit := float64(plotBarW) / 2 / plotRange // one doubling
	top := py + plotTitleH
	y := top
	for _, f := range fams {
		text(b, px+8, y+12, "start", `fill="#718096" font-style="italic"`,
			strings.ToUpper(f.name)+", relative to "+f.reference)
		y += plotCaptionH
		for _, s := range f.systems {
			text(b, int(barX)-10, y+plotBarHeight-2, "end", "", s.Name)
			label, fill := "–", `fill="#718096"`
			if q, ok := r.relative(m.Name, s.Name, f.reference); ok {
				l := math.Log2(q)
				cut := math.Abs(l) > plotRange
				l = max(-plotRange, min(plotRange, l))
				x0, x1 := centre, centre+l*unit
				if x1 < x0 {
					x0, x1 = x1, x0
				}
				if x1-x0 < 2 { // the reference itself, or nearly: a visible mark
					x0, x1 = centre+l*unit-1, centre+l*unit+1
				}
				fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
					x0, y, x1-x0, plotBarHeight, barColour(s, f), esc(fmt.Sprintf("%s: %.3f×", s.Name, q)))
				if cut {
					tip, dir := x1, 1.0
					if l < 0 {
						tip, dir = x0, -1.0
					}
					fmt.Fprintf(b, `<polygon points="%.1f,%d %.1f,%d %.1f,%d" fill="%s"/>`+"\n",
						tip, y-2, tip+dir*7, y+plotBarHeight/2, tip, y+plotBarHeight+2, barColour(s, f))
				}
				v, _ := r.Value(m.Name, s.Name)
				label, fill = fmt.Sprintf("%.2f× · %s %s", q, formatValue(v.Value), m.Unit), ""
			}
			text(b, int(barX)+plotBarW+12, y+plotBarHeight-2, "start", fill, label)
			y += plotRowH
		}
	}
	// Grid: a line per doubling, the reference's dashed, labelled underneath.
	ticks := map[int]string{-2: "¼×", -1: "½×", 0: "1×", 1: "2×", 2: "4×"}
	for d := -plotRange; d <= plotRange; d++ {
		gx := centre + float64(d)*unit
		style := `stroke="#cbd5e0"`
		if d == 0 {
			style = `stroke="#1a202c" stroke-dasharray="3,3"`
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" %s/>`+"\n", gx, top+plotCaptionH-2, gx, y, style)
		if t, ok := ticks[d]; ok {
			text(b, int(gx), y+11, "middle", `fill="#718096" font-size="10"`, t)
		}
	}
	b.WriteString("</g>\n")
}

func barColour(s System, f family) string {
	switch {
	case len(s.References) > 0:
		return colourPeerwire
	case s.Name == f.reference:
		return colourReference
	case strings.HasPrefix(s.Name, "libp2p"):
		return colourLibp2p
	default:
		return colourOther
	}
}

// text writes a <text> element; extra holds further attributes, already escaped.
func text(b *strings.Builder, x, y int, anchor, extra, s string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, extra, esc(s))
}

// esc escapes s for XML text and attribute values (quotes included).
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
