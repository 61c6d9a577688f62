package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one figure of one system: the median over the runs.
type Result struct {
	Case   string  `json:"case"`
	Metric string  `json:"metric"`
	System string  `json:"system"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	// HigherIsBetter tells how to read ratios.
	HigherIsBetter bool `json:"higher_is_better"`
	// Samples are the figures of the individual runs, in run order.
	Samples []float64 `json:"samples"`
}

// Report is the outcome of a run: the median of each figure over the runs, and where it
// was measured.
type Report struct {
	Machine string    `json:"machine"`
	When    time.Time `json:"when"`
	Runs    int       `json:"runs"`
	Size    Size      `json:"size"`
	Results []Result  `json:"results"`
}

// Run measures every case on every system it measures (Case.Systems) runs times and keeps
// medians. Each run measures
// all systems back to back, so ratios compare figures taken under the same conditions.
// Progress lines go to progress when it is not nil.
func Run(ctx context.Context, size Size, runs int, progress io.Writer) (*Report, error) {
	runs = max(runs, 1)
	systems, cases := Systems(), Cases()
	type key struct{ metric, system string }
	samples := make(map[key][]float64)
	for r := range runs {
		for _, c := range cases {
			// Each run starts with a different system, so that no system always follows the
			// same one, and each measurement starts with the previous one's garbage
			// collected, so that no system pays for another's.
			order := make([]System, 0, len(systems))
			for k := range systems {
				if s := systems[(k+r)%len(systems)]; c.Measures(s) {
					order = append(order, s)
				}
			}
			record := func(s System, v []float64, took time.Duration, how string) {
				if progress != nil {
					var figures []string
					for i, m := range c.Metrics {
						figures = append(figures, fmt.Sprintf("%s %s %s", m.Name, formatValue(v[i]), m.Unit))
					}
					fmt.Fprintf(progress, "run %d/%d: %s: %s (%s%.1f s)\n", r+1, runs, s.Name, strings.Join(figures, ", "),
						how, took.Seconds())
				}
				for i, m := range c.Metrics {
					k := key{m.Name, s.Name}
					samples[k] = append(samples[k], v[i])
				}
			}
			if c.RunTogether != nil {
				// It collects garbage before each of its blocks.
				start := time.Now()
				vs, err := c.RunTogether(ctx, order, size)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", c.Name, err)
				}
				for k, s := range order {
					record(s, vs[k], time.Since(start), "all systems side by side, ")
				}
				continue
			}
			for _, s := range order {
				runtime.GC()
				start := time.Now()
				v, err := c.Run(ctx, s, size)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", c.Name, s.Name, err)
				}
				record(s, v, time.Since(start), "")
			}
		}
	}
	rep := &Report{Machine: Machine(), When: time.Now().UTC(), Runs: runs, Size: size}
	for _, c := range cases {
		for _, m := range c.Metrics {
			for _, s := range systems {
				if !c.Measures(s) {
					continue // no figure: a dash in the table and the chart
				}
				v := samples[key{m.Name, s.Name}]
				rep.Results = append(rep.Results, Result{Case: c.Name, Metric: m.Name, System: s.Name,
					Value: median(v), Unit: m.Unit, HigherIsBetter: m.HigherIsBetter, Samples: v})
			}
		}
	}
	return rep, nil
}

// median returns the median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Machine describes where the figures were taken.
func Machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// Value returns the figure of system s for metric m.
func (r *Report) Value(m, s string) (Result, bool) {
	for _, x := range r.Results {
		if x.Metric == m && x.System == s {
			return x, true
		}
	}
	return Result{}, false
}

// Ratio is the figure of system for metric relative to reference's in the same report: above
// 1 means system is better, whatever the unit (latency and memory ratios are inverted). It is
// the median of the ratios taken within each run (the two systems measured a few seconds
// apart), so that the machine's drift between runs does not enter it; a report without
// per-run samples gives the ratio of the medians. It is missing when either figure is missing
// or not positive.
func (r *Report) Ratio(metric, system, reference string) (float64, bool) {
	a, ok1 := r.Value(metric, system)
	b, ok2 := r.Value(metric, reference)
	if !ok1 || !ok2 || a.Value <= 0 || b.Value <= 0 {
		return 0, false
	}
	ratio := func(x, y float64) float64 {
		if a.HigherIsBetter {
			return x / y
		}
		return y / x
	}
	if len(a.Samples) > 0 && len(a.Samples) == len(b.Samples) {
		var perRun []float64
		for i, x := range a.Samples {
			if y := b.Samples[i]; x > 0 && y > 0 {
				perRun = append(perRun, ratio(x, y))
			}
		}
		if len(perRun) > 0 {
			return median(perRun), true
		}
	}
	return ratio(a.Value, b.Value), true
}

// WriteTable prints two tables: every system's figures, then every comparison of a peerwire
// system with a reference as a ratio.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	systems := Systems()
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	header := []string{"figures"}
	for _, s := range systems {
		header = append(header, s.Name)
	}
	row(header...)
	for _, m := range Metrics() {
		cells := []string{m.Name + " (" + m.Unit + ")"}
		for _, s := range systems {
			if v, ok := r.Value(m.Name, s.Name); ok {
				cells = append(cells, formatValue(v.Value))
			} else {
				cells = append(cells, "–")
			}
		}
		row(cells...)
	}
	row()
	header = []string{"ratios (above 1 favours peerwire)"}
	comparisons := Comparisons()
	for _, c := range comparisons {
		header = append(header, c.System+" ÷ "+c.Reference)
	}
	row(header...)
	for _, m := range Metrics() {
		cells := []string{m.Name}
		for _, c := range comparisons {
			if q, ok := r.Ratio(m.Name, c.System, c.Reference); ok {
				cells = append(cells, fmt.Sprintf("%.2f×", q))
			} else {
				cells = append(cells, "–")
			}
		}
		row(cells...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Footer())
	return err
}

// Footer says where, when and how the figures were taken, in one line.
func (r *Report) Footer() string {
	return fmt.Sprintf("%s; %s; medians of %d run(s) at %s size (fan-out to %d peers, %d idle connections); "+
		"latency and memory ratios inverted",
		r.Machine, r.When.Format("2006-01-02 15:04 MST"), r.Runs, r.Size.Name, r.Size.FanoutPeers, r.Size.IdleConns)
}

func formatValue(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
