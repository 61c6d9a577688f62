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

// Report is the outcome of a run: the median of each figure over the runs, and where it
// was measured.
type Report struct {
	Machine string    `json:"machine"`
	When    time.Time `json:"when"`
	Runs    int       `json:"runs"`
	Results []Result  `json:"results"`
}

// Run measures every case on every system runs times and keeps medians. Each run measures
// all systems back to back, so ratios compare figures taken under the same conditions.
func Run(ctx context.Context, size Size, runs int, progress io.Writer) (*Report, error) {
	runs = max(runs, 1)
	systems, cases := Systems(), Cases()
	samples := make(map[[2]string][]float64)
	for r := range runs {
		for _, c := range cases {
			for _, s := range systems {
				if progress != nil {
					fmt.Fprintf(progress, "run %d/%d: %s %s\n", r+1, runs, c.Name, s.Name)
				}
				v, err := c.Run(ctx, s, size)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", c.Name, s.Name, err)
				}
				k := [2]string{c.Name, s.Name}
				samples[k] = append(samples[k], v)
			}
		}
	}
	rep := &Report{Machine: Machine(), When: time.Now().UTC(), Runs: runs}
	for _, c := range cases {
		for _, s := range systems {
			v := samples[[2]string{c.Name, s.Name}]
			slices.Sort(v)
			rep.Results = append(rep.Results, Result{Case: c.Name, System: s.Name, Value: v[len(v)/2], Unit: c.Unit, HigherIsBetter: c.HigherIsBetter})
		}
	}
	return rep, nil
}

// Machine describes where the figures were taken.
func Machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

func (r *Report) value(c, s string) (Result, bool) {
	for _, x := range r.Results {
		if x.Case == c && x.System == s {
			return x, true
		}
	}
	return Result{}, false
}

// Ratio is a system's figure relative to its reference's in the same case: above 1 is better,
// whatever the unit (latency and memory ratios are inverted).
func (r *Report) Ratio(c string, s System) (float64, bool) {
	if s.Reference == "" {
		return 0, false
	}
	a, ok1 := r.value(c, s.Name)
	b, ok2 := r.value(c, s.Reference)
	if !ok1 || !ok2 || a.Value == 0 || b.Value == 0 {
		return 0, false
	}
	if a.HigherIsBetter {
		return a.Value / b.Value, true
	}
	return b.Value / a.Value, true
}

// WriteTable prints the figures and, for peerwire's rows, the ratio to the reference.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	systems := Systems()
	header := []string{"case"}
	for _, s := range systems {
		header = append(header, s.Name)
	}
	for _, s := range systems {
		if s.Reference != "" {
			header = append(header, s.Name+" ÷ "+s.Reference)
		}
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, c := range Cases() {
		row := []string{c.Name + " (" + c.Unit + ")"}
		for _, s := range systems {
			v, _ := r.value(c.Name, s.Name)
			row = append(row, formatValue(v.Value))
		}
		for _, s := range systems {
			if s.Reference == "" {
				continue
			}
			if q, ok := r.Ratio(c.Name, s); ok {
				row = append(row, fmt.Sprintf("%.2f×", q))
			} else {
				row = append(row, "–")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s; medians of %d run(s); ratios above 1 favour peerwire (latency and memory inverted)\n", r.Machine, r.Runs)
	return err
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
