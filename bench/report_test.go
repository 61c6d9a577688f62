package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syntheticReport has a figure for every metric and every system its case measures, without
// measuring anything; the memory figure of tcp is missing (zero), as it can be at the tiny
// size.
func syntheticReport() *Report {
	rep := &Report{Machine: Machine(), When: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Runs: 3, Size: Full}
	for _, c := range Cases() {
		for _, m := range c.Metrics {
			for i, s := range Systems() {
				if !c.Measures(s) {
					continue
				}
				v := float64(100 + 10*i)
				if m.Name == "idle-conn-memory" && s.Name == "tcp" {
					v = 0
				}
				rep.Results = append(rep.Results, Result{Case: c.Name, Metric: m.Name, System: s.Name, Value: v,
					Unit: m.Unit, HigherIsBetter: m.HigherIsBetter, Samples: []float64{v, v, v}})
			}
		}
	}
	return rep
}

func TestRatio(t *testing.T) {
	rep := syntheticReport()
	// peerwire-quic is 100, quic-go 120 (third system), libp2p-quic 150 (sixth).
	q, ok := rep.Ratio("messages-64B", "peerwire-quic", "quic-go")
	require.True(t, ok)
	require.InDelta(t, 100.0/120, q, 1e-9)
	q, ok = rep.Ratio("rtt-p99", "peerwire-quic", "libp2p-quic")
	require.True(t, ok)
	require.InDelta(t, 150.0/100, q, 1e-9, "lower is better: inverted")
	_, ok = rep.Ratio("idle-conn-memory", "peerwire-qmux", "tcp")
	require.False(t, ok, "a zero figure has no ratio")
	_, ok = rep.Ratio("no-such-metric", "peerwire-quic", "quic-go")
	require.False(t, ok)
	q, ok = rep.Ratio("delay-bulk", "peerwire-qmux", "tls-tcp")
	require.True(t, ok)
	require.InDelta(t, 110.0/130, q, 1e-9)
	_, ok = rep.Ratio("delay-bulk", "peerwire-qmux", "libp2p-tcp")
	require.False(t, ok, "the delay cases do not measure libp2p")
}

// A ratio is the median of the ratios within each run, not the ratio of the medians: here
// the system is as fast as the reference in two runs of three, and the machine got faster
// between runs.
func TestRatioIsTakenWithinEachRun(t *testing.T) {
	rep := &Report{Runs: 3, Results: []Result{
		{Metric: "m", System: "a", HigherIsBetter: true, Value: 300, Samples: []float64{100, 300, 900}},
		{Metric: "m", System: "b", HigherIsBetter: true, Value: 200, Samples: []float64{100, 200, 900}},
		{Metric: "l", System: "a", Value: 20, Samples: []float64{10, 20, 0}},
		{Metric: "l", System: "b", Value: 20, Samples: []float64{20, 10, 5}},
	}}
	q, ok := rep.Ratio("m", "a", "b")
	require.True(t, ok)
	require.InDelta(t, 1.0, q, 1e-9, "per run 1, 1.5, 1; the medians would give 1.5")
	q, ok = rep.Ratio("l", "a", "b")
	require.True(t, ok)
	require.InDelta(t, 1.25, q, 1e-9, "lower is better: per run 2 and 0.5 (the zero sample is skipped)")
}

func TestWriteTableNamesEverySystemMetricAndComparison(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, syntheticReport().WriteTable(&buf))
	out := buf.String()
	for _, s := range Systems() {
		require.Contains(t, out, s.Name)
	}
	for _, m := range Metrics() {
		require.Contains(t, out, m.Name+" ("+m.Unit+")")
	}
	for _, c := range Comparisons() {
		require.Contains(t, out, c.System+" ÷ "+c.Reference)
	}
	require.Contains(t, out, "0.83×") // 100 ÷ 120
	require.Contains(t, out, "medians of 3 run(s) at full size (fan-out to 100 peers, 1000 idle connections)")
}

func TestWriteJSONRoundTrips(t *testing.T) {
	rep := syntheticReport()
	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	var back Report
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	require.Equal(t, rep.Results, back.Results)
	require.Equal(t, rep.Size, back.Size)
	require.True(t, rep.When.Equal(back.When))
}

// TestWriteSVG checks that the chart is well-formed XML with an svg root and that it names
// every metric and every system; it does not check the drawing.
func TestWriteSVG(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, syntheticReport().WriteSVG(&buf))
	dec := xml.NewDecoder(&buf)
	var texts []string
	root := ""
	bars := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
				require.Equal(t, "http://www.w3.org/2000/svg", tok.Name.Space)
			}
			if tok.Name.Local == "rect" {
				bars++
			}
		case xml.CharData:
			texts = append(texts, string(tok))
		}
	}
	require.Equal(t, "svg", root)
	all := strings.Join(texts, "\n")
	for _, m := range Metrics() {
		require.Contains(t, texts, m.Name, "panel title of %s", m.Name)
	}
	for _, s := range Systems() {
		require.Contains(t, texts, s.Name, "bar label of %s", s.Name)
	}
	require.Contains(t, all, "1.00× · 120.0 msgs/s") // quic-go, the QUIC family's reference
	require.Contains(t, all, "1.25× · 150.0 msgs/s") // libp2p-quic ÷ quic-go
	require.Contains(t, all, "0.80× · 150.0 µs")     // the same, lower is better
	require.Contains(t, all, "–", "the missing memory figure of tcp")
	// Every figure but one has a bar, plus the background, the legend and one frame per panel.
	require.Equal(t, len(syntheticReport().Results)-1+1+4+len(Metrics()), bars)
	require.Less(t, len(syntheticReport().Results), len(Metrics())*len(Systems()), "no figure, no bar")
}
