package bench

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// BenchmarkCompare runs each case on each system once per iteration at the Tiny size (or
// larger with -benchtime) and reports the figure as a custom metric; compare rows within
// one run.
func BenchmarkCompare(b *testing.B) {
	ctx := context.Background()
	for _, c := range Cases() {
		for _, s := range Systems() {
			b.Run(c.Name+"/"+s.Name, func(b *testing.B) {
				var v float64
				for b.Loop() {
					var err error
					if v, err = c.Run(ctx, s, Tiny); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(v, c.Unit)
			})
		}
	}
}

// TestEveryCaseRunsOnEverySystem checks the harness itself at the tiny size: every figure is
// positive and every peerwire row has a ratio. It asserts nothing about speed.
func TestEveryCaseRunsOnEverySystem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Tiny, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(Cases()) * len(Systems()); len(rep.Results) != want {
		t.Fatalf("%d results, want %d", len(rep.Results), want)
	}
	for _, r := range rep.Results {
		if r.Value <= 0 && r.Case != "idle-conn-memory" {
			t.Errorf("%s on %s: %v %s", r.Case, r.System, r.Value, r.Unit)
		}
	}
	for _, c := range Cases() {
		for _, s := range Systems() {
			if _, ok := rep.Ratio(c.Name, s); s.Reference != "" && !ok && c.Name != "idle-conn-memory" {
				t.Errorf("no ratio for %s on %s", c.Name, s.Name)
			}
		}
	}
}
