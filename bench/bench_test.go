package bench

import (
	"context"
	"flag"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var benchSize = flag.String("size", "tiny", "size of BenchmarkCompare: tiny or full")

// BenchmarkCompare runs each case on each system once per iteration at the Tiny size (or
// Full with -size full) and reports its figures as custom metrics; compare rows within one
// run.
func BenchmarkCompare(b *testing.B) {
	ctx := context.Background()
	size := Tiny
	switch *benchSize {
	case "tiny":
	case "full":
		size = Full
	default:
		b.Fatalf("-size must be tiny or full, not %q", *benchSize)
	}
	for _, c := range Cases() {
		for _, s := range Systems() {
			if !c.Measures(s) {
				continue
			}
			b.Run(c.Name+"/"+s.Name, func(b *testing.B) {
				var v []float64
				for b.Loop() {
					runtime.GC() // as Run does: no system pays for the previous one's garbage
					var err error
					if v, err = c.Run(ctx, s, size); err != nil {
						b.Fatal(err)
					}
				}
				for i, m := range c.Metrics {
					b.ReportMetric(v[i], c.benchUnit(m))
				}
			})
		}
	}
}

// TestEveryCaseRunsOnEverySystem checks the harness itself at the tiny size: every case has
// a positive figure on every system it measures and none on the others, and every
// comparison of systems it measures has a ratio. It asserts nothing about speed. The memory
// figure may be zero or negative at this size (the garbage collector's noise is larger than
// four connections), so it is only required to exist.
func TestEveryCaseRunsOnEverySystem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Tiny, 1, nil)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, s := range Systems() {
		names[s.Name] = true
	}
	for _, want := range []string{"peerwire-quic", "peerwire-qmux", "quic-go", "tls-tcp", "tcp", "libp2p-quic", "libp2p-tcp"} {
		require.True(t, names[want], "no system %s", want)
	}
	figures := 0
	for _, c := range Cases() {
		for _, name := range c.Systems {
			require.True(t, names[name], "%s measures %s, which is no system", c.Name, name)
		}
		for _, m := range c.Metrics {
			for _, s := range Systems() {
				r, ok := rep.Value(m.Name, s.Name)
				if !c.Measures(s) {
					require.False(t, ok, "%s on %s, which %s does not measure", m.Name, s.Name, c.Name)
					continue
				}
				figures++
				require.True(t, ok, "no %s on %s", m.Name, s.Name)
				require.Len(t, r.Samples, 1)
				if m.Name != "idle-conn-memory" {
					require.Positive(t, r.Value, "%s on %s", m.Name, s.Name)
				}
			}
			for _, cmp := range Comparisons() {
				measured := c.Measures(System{Name: cmp.System}) && c.Measures(System{Name: cmp.Reference})
				if _, ok := rep.Ratio(m.Name, cmp.System, cmp.Reference); !ok && measured && m.Name != "idle-conn-memory" {
					t.Errorf("no ratio for %s of %s ÷ %s", m.Name, cmp.System, cmp.Reference)
				}
			}
		}
	}
	require.Len(t, rep.Results, figures)
}

// The delay cases measure at least peerwire's systems and their target references, and
// their figures are taken through the proxy: a round trip costs at least two delays, a
// connect to the first message at least three (a handshake's round trip and the message's
// way), whatever the system.
func TestDelayCasesGoThroughTheProxy(t *testing.T) {
	for _, name := range []string{"delay-rtt", "delay-connect", "delay-bulk"} {
		i := slices.IndexFunc(Cases(), func(c Case) bool { return c.Name == name })
		require.GreaterOrEqual(t, i, 0, "no case %s", name)
		for _, s := range []string{"peerwire-quic", "peerwire-qmux", "quic-go", "tls-tcp"} {
			require.True(t, Cases()[i].Measures(System{Name: s}), "%s does not measure %s", name, s)
		}
	}
	tcp := Systems()[slices.IndexFunc(Systems(), func(s System) bool { return s.Name == "tcp" })]
	v, err := runDelayRTT(t.Context(), []System{tcp}, Tiny)
	require.NoError(t, err)
	require.GreaterOrEqual(t, v[0][0], float64(2*OneWayDelay/time.Millisecond), "round trip, ms")
	c, err := runDelayConnect(t.Context(), tcp, Tiny)
	require.NoError(t, err)
	require.GreaterOrEqual(t, c[0], float64(3*OneWayDelay/time.Millisecond), "connect to first message, ms")
}

func TestComparisons(t *testing.T) {
	require.Equal(t, []Comparison{
		{"peerwire-quic", "quic-go"}, {"peerwire-qmux", "tls-tcp"},
		{"peerwire-quic", "libp2p-quic"}, {"peerwire-qmux", "libp2p-tcp"},
	}, Comparisons())
	for _, c := range Comparisons() {
		found := false
		for _, s := range Systems() {
			found = found || s.Name == c.Reference
		}
		require.True(t, found, "reference %s is not a system", c.Reference)
	}
}

// TestNodesConnectInBothDirections checks, for every system, that several nodes connect to
// each other whichever dials, and that messages flow both ways on each connection.
func TestNodesConnectInBothDirections(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every system")
	}
	for _, s := range Systems() {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			nodes, err := s.Nodes(ctx, 3)
			require.NoError(t, err)
			defer closeNodes(nodes)
			for _, link := range [][2]int{{0, 1}, {2, 0}, {1, 2}} {
				p, err := nodes[link[0]].Connect(ctx, nodes[link[1]])
				require.NoError(t, err, "%d → %d", link[0], link[1])
				require.NoError(t, p.Client.Send(ctx, []byte("ping")))
				m, err := p.Server.Recv(ctx)
				require.NoError(t, err)
				require.Equal(t, "ping", string(m))
				require.NoError(t, p.Server.Send(ctx, []byte("pong")))
				m, err = p.Client.Recv(ctx)
				require.NoError(t, err)
				require.Equal(t, "pong", string(m))
				p.Close()
			}
		})
	}
}

// TestNodesConnectThroughAProxy checks, for every system, that a node connects to another
// through a delay proxy, that the message its dialing end sends right after the dial reaches
// the other end first, and that messages then flow both ways.
func TestNodesConnectThroughAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every system")
	}
	for _, s := range Systems() {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			nodes, err := s.Nodes(ctx, 2)
			require.NoError(t, err)
			defer closeNodes(nodes)
			proxy, err := startProxy(nodes[1], time.Millisecond)
			require.NoError(t, err)
			defer proxy.Close()
			p, err := nodes[0].(proxiedNode).connectVia(ctx, nodes[1], proxy.Addr(), []byte("first"))
			require.NoError(t, err)
			defer p.Close()
			require.NoError(t, p.Client.Send(ctx, []byte("ping")))
			for _, want := range []string{"first", "ping"} {
				m, err := p.Server.Recv(ctx)
				require.NoError(t, err)
				require.Equal(t, want, string(m))
			}
			require.NoError(t, p.Server.Send(ctx, []byte("pong")))
			m, err := p.Client.Recv(ctx)
			require.NoError(t, err)
			require.Equal(t, "pong", string(m))
		})
	}
}

func TestBenchUnits(t *testing.T) {
	for _, c := range Cases() {
		seen := map[string]bool{}
		for _, m := range c.Metrics {
			u := c.benchUnit(m)
			require.NotContains(t, u, " ")
			require.False(t, seen[u], "%s: unit %s twice", c.Name, u)
			seen[u] = true
		}
	}
	rtt := Cases()[4]
	require.Equal(t, "rtt", rtt.Name)
	require.Equal(t, "p99-µs", rtt.benchUnit(rtt.Metrics[1]))
}

func TestPercentileAndMedian(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Microsecond
	}
	require.Equal(t, 50.0, percentile(d, 0.5))
	require.Equal(t, 99.0, percentile(d, 0.99))
	require.Equal(t, 7.0, percentile(d[6:7], 0.99))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 2, 3}))
}
