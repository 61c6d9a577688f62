package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Metric is one figure a case reports, one row of the table.
type Metric struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// HigherIsBetter tells how to read ratios (latency and memory: lower is better).
	HigherIsBetter bool `json:"higher_is_better"`
}

// Case is one measurement applied to every system. Run returns one value per metric.
type Case struct {
	Name    string
	Metrics []Metric
	Run     func(ctx context.Context, s System, size Size) ([]float64, error)
	// RunTogether, when not nil, measures several systems side by side, their work
	// interleaved, and returns Run's figures for each, in the order of ss; Run is then
	// RunTogether with one system. Report's Run uses it for a case whose figures drift with
	// the machine faster than one system's measurement lasts.
	RunTogether func(ctx context.Context, ss []System, size Size) ([][]float64, error)
	// Systems names the systems the case measures; nil means every system. The others have
	// no figure for its metrics.
	Systems []string
}

// Measures reports whether the case measures s.
func (c Case) Measures(s System) bool { return c.Systems == nil || slices.Contains(c.Systems, s.Name) }

// benchUnit is the unit under which a testing.B benchmark of c reports m: the metric's unit,
// prefixed with what tells it apart from the case's other metrics ("p99-µs").
func (c Case) benchUnit(m Metric) string {
	if len(c.Metrics) == 1 {
		return m.Unit
	}
	suffix := m.Name
	if len(suffix) > len(c.Name) && suffix[:len(c.Name)+1] == c.Name+"-" {
		suffix = suffix[len(c.Name)+1:]
	}
	return suffix + "-" + m.Unit
}

// Size scales the work of each case: Tiny keeps CI fast, Full gives stable figures.
type Size struct {
	Name        string        `json:"name"`
	Messages    int           `json:"messages"`     // messages per message-rate run
	BulkBytes   int           `json:"bulk_bytes"`   // bytes per bulk run
	RoundTrips  int           `json:"round_trips"`  // round trips per latency run
	Handshakes  time.Duration `json:"handshakes"`   // how long to dial repeatedly (ns in JSON)
	IdleConns   int           `json:"idle_conns"`   // connections held for the memory case
	FanoutPeers int           `json:"fanout_peers"` // receivers of each fan-out
	Fanouts     int           `json:"fanouts"`      // fan-outs per fan-out run
	// The cases through a delay proxy (OneWayDelay each way).
	DelayRoundTrips int `json:"delay_round_trips"` // round trips per delay-rtt run
	DelayConnects   int `json:"delay_connects"`    // connects per delay-connect run
	DelayBulkBytes  int `json:"delay_bulk_bytes"`  // bytes per delay-bulk run (one message if below 1 MiB)
}

var (
	// Tiny is for smoke runs (CI): every case runs, the figures mean little.
	Tiny = Size{Name: "tiny", Messages: 200, BulkBytes: 2 << 20, RoundTrips: 20, Handshakes: 50 * time.Millisecond,
		IdleConns: 4, FanoutPeers: 4, Fanouts: 10,
		DelayRoundTrips: 2, DelayConnects: 1, DelayBulkBytes: 64 << 10}
	// Full is for the figures in docs/BENCHMARKS.md.
	Full = Size{Name: "full", Messages: 100_000, BulkBytes: 256 << 20, RoundTrips: 10_000, Handshakes: time.Second,
		IdleConns: 1000, FanoutPeers: 100, Fanouts: 500,
		DelayRoundTrips: 40, DelayConnects: 9, DelayBulkBytes: 64 << 20}
)

// Message sizes of the cases.
const (
	// MessageSize is the payload of the fan-out case and the middle message-rate case.
	MessageSize = 256
	// rttMessage is the request and the response of the round-trip case.
	rttMessage = 64
	// bulkMessage is the message size of the bulk case.
	bulkMessage = 1 << 20
)

// Cases returns every measurement.
func Cases() []Case {
	return []Case{
		messageCase("messages-64B", 64),
		messageCase("messages-256B", MessageSize),
		messageCase("messages-4KiB", 4<<10),
		{Name: "bulk", Metrics: []Metric{{"bulk", "MiB/s", true}}, Run: runAlone(runBulk), RunTogether: runBulk},
		{Name: "rtt", Metrics: []Metric{{"rtt-p50", "µs", false}, {"rtt-p99", "µs", false}},
			Run: runAlone(runRTT), RunTogether: runRTT},
		{Name: "handshakes", Metrics: []Metric{{"handshakes", "conns/s", true}}, Run: runHandshakes},
		{Name: "idle-conn-memory", Metrics: []Metric{{"idle-conn-memory", "KiB/conn", false}}, Run: runIdleMemory},
		{Name: "fanout", Metrics: []Metric{{"fanout-p50", "µs", false}}, Run: runFanout},
		{Name: "delay-rtt", Metrics: []Metric{{"delay-rtt-p50", "ms", false}},
			Run: runAlone(runDelayRTT), RunTogether: runDelayRTT, Systems: delaySystems},
		{Name: "delay-connect", Metrics: []Metric{{"delay-connect-p50", "ms", false}}, Run: runDelayConnect,
			Systems: delaySystems},
		{Name: "delay-bulk", Metrics: []Metric{{"delay-bulk", "MiB/s", true}}, Run: runDelayBulk, Systems: delaySystems},
	}
}

// Metrics returns the metrics of every case, in table order.
func Metrics() []Metric {
	var out []Metric
	for _, c := range Cases() {
		out = append(out, c.Metrics...)
	}
	return out
}

// stream sends n messages of size from client to server and returns the time until the
// server had them all.
func stream(ctx context.Context, p *Pair, n, size int) (time.Duration, error) {
	msg := make([]byte, size)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		for range n {
			if _, err := p.Server.Recv(ctx); err != nil {
				errc <- err
				p.Close() // unblocks a sender waiting for flow-control credit
				return
			}
		}
		errc <- nil
	}()
	for range n {
		if err := p.Client.Send(ctx, msg); err != nil {
			return 0, joinPeer(p, err, errc, "receiver")
		}
	}
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("receiver: %w", err)
	}
	return time.Since(start), nil
}

// joinPeer ends, after err on the client's side of p, the goroutine serving the other end
// (which reports on errc) and returns err, joined with that goroutine's error if it failed
// first (a failure that closes p and so causes err). One still running is stopped by closing
// p; its error then says nothing new.
func joinPeer(p *Pair, err error, errc <-chan error, role string) error {
	select {
	case peerErr := <-errc:
		if peerErr != nil {
			return errors.Join(err, fmt.Errorf("%s: %w", role, peerErr))
		}
	default:
		p.Close()
		<-errc
	}
	return err
}

func withPair(ctx context.Context, s System, f func(*Pair) ([]float64, error)) ([]float64, error) {
	p, cleanup, err := connectPair(ctx, s)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return f(p)
}

// messageCase sends Size.Messages messages of size bytes from one sender and reports how
// many per second reached the receiver.
func messageCase(name string, size int) Case {
	return Case{Name: name, Metrics: []Metric{{name, "msgs/s", true}}, Run: func(ctx context.Context, s System, sz Size) ([]float64, error) {
		return withPair(ctx, s, func(p *Pair) ([]float64, error) {
			d, err := stream(ctx, p, sz.Messages, size)
			return []float64{float64(sz.Messages) / d.Seconds()}, err
		})
	}}
}

// bulkBlocks is how many blocks each system's bulk transfer is measured in.
const bulkBlocks = 8

// runBulk sends BulkBytes in 1 MiB messages on each system of ss, side by side in
// bulkBlocks blocks per system (see sideBySide), and reports MiB/s over the blocks' time.
func runBulk(ctx context.Context, ss []System, size Size) ([][]float64, error) {
	n := max(size.BulkBytes/bulkMessage, 1)
	took := make([]time.Duration, len(ss))
	err := sideBySide(ctx, ss, connectPair, n, bulkBlocks, func(i int, p *Pair, k int) error {
		d, err := stream(ctx, p, k, bulkMessage)
		took[i] += d
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(ss))
	for i := range ss {
		out[i] = []float64{float64(n*bulkMessage) / (1 << 20) / took[i].Seconds()}
	}
	return out, nil
}

// connector starts two nodes of a system and connects them; cleanup closes everything.
// connectPair connects them directly, connectDelayed through a delay proxy.
type connector func(ctx context.Context, s System) (p *Pair, cleanup func(), err error)

// sideBySide connects a pair of nodes of every system in ss with connect and has work do
// total units on each pair, in blocks that take turns: a block of every system, then the
// next block of every system (the order rotating from one round of blocks to the next), and
// so on.
// work(i, p, n) does n units on pair p of system ss[i]. A figure such as a round trip or a
// transfer rate drifts on a shared machine by more than the targets' margins over the
// seconds that measuring every system takes; side by side, every system meets the same
// drift, and their ratio compares like with like. Each block starts with a garbage
// collection, so that no system pays for another's garbage.
func sideBySide(ctx context.Context, ss []System, connect connector, total, blocks int,
	work func(i int, p *Pair, n int) error) error {
	pairs := make([]*Pair, 0, len(ss))
	var cleanups []func()
	defer func() {
		for _, cleanup := range cleanups {
			cleanup()
		}
	}()
	for _, s := range ss {
		p, cleanup, err := connect(ctx, s)
		if err != nil {
			return err
		}
		pairs, cleanups = append(pairs, p), append(cleanups, cleanup)
	}
	blocks = max(min(blocks, total), 1)
	for b := range blocks {
		n := total*(b+1)/blocks - total*b/blocks
		for k := range ss {
			i := (k + b) % len(ss)
			runtime.GC()
			if err := work(i, pairs[i], n); err != nil {
				return fmt.Errorf("%s: %w", ss[i].Name, err)
			}
		}
	}
	return nil
}

// percentile returns the nearest-rank q-quantile (0 < q ≤ 1) of sorted, in microseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	i := max(int(math.Ceil(q*float64(len(sorted))))-1, 0)
	return float64(sorted[i]) / float64(time.Microsecond)
}

// runAlone makes a Case.Run of a Case.RunTogether.
func runAlone(together func(context.Context, []System, Size) ([][]float64, error)) func(context.Context, System, Size) ([]float64, error) {
	return func(ctx context.Context, s System, size Size) ([]float64, error) {
		v, err := together(ctx, []System{s}, size)
		if err != nil {
			return nil, err
		}
		return v[0], nil
	}
}

// rttBlocks is how many blocks each system's round trips are measured in.
const rttBlocks = 20

// runRTT sends a 64 B request and waits for the 64 B echo, RoundTrips times on each system
// of ss, side by side in rttBlocks blocks per system (see sideBySide).
func runRTT(ctx context.Context, ss []System, size Size) ([][]float64, error) {
	rtts, err := roundTrips(ctx, ss, connectPair, size.RoundTrips, rttBlocks)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(ss))
	for i := range ss {
		out[i] = []float64{percentile(rtts[i], 0.50), percentile(rtts[i], 0.99)}
	}
	return out, nil
}

// roundTrips connects a pair of every system of ss with connect, sends a 64 B request and
// waits for the 64 B echo total times on each, side by side in blocks (see sideBySide), and
// returns each system's round trips, sorted.
func roundTrips(ctx context.Context, ss []System, connect connector, total, blocks int) ([][]time.Duration, error) {
	msg := make([]byte, rttMessage)
	rtts := make([][]time.Duration, len(ss))
	err := sideBySide(ctx, ss, connect, total, blocks, func(i int, p *Pair, n int) error {
		if rtts[i] == nil {
			rtts[i] = make([]time.Duration, 0, total)
		}
		errc := make(chan error, 1)
		go func() {
			for range n {
				m, err := p.Server.Recv(ctx)
				if err == nil {
					err = p.Server.Send(ctx, m)
				}
				if err != nil {
					errc <- err
					p.Close() // unblocks the client's Recv
					return
				}
			}
			errc <- nil
		}()
		for range n {
			start := time.Now()
			err := p.Client.Send(ctx, msg)
			if err == nil {
				_, err = p.Client.Recv(ctx)
			}
			if err != nil {
				return joinPeer(p, err, errc, "echo")
			}
			rtts[i] = append(rtts[i], time.Since(start))
		}
		if err := <-errc; err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range ss {
		slices.Sort(rtts[i])
	}
	return rtts, nil
}

// runHandshakes dials one listener sequentially for Size.Handshakes, each dial a full
// mutually authenticated handshake followed by a close.
func runHandshakes(ctx context.Context, s System, size Size) ([]float64, error) {
	dial, cleanup, err := s.Dialer(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer cleanup()
	n := 0
	start := time.Now()
	for time.Since(start) < size.Handshakes || n == 0 {
		if err := dial(ctx); err != nil {
			return nil, fmt.Errorf("%s: dial: %w", s.Name, err)
		}
		n++
	}
	return []float64{float64(n) / time.Since(start).Seconds()}, nil
}

// accepts carries the listener side's outcome of each handshake to the dial that started it.
// A dial of the handshakes case returns only once both ends hold the connection, so that the
// handshakes are sequential, as the case says: without the wait, a reference's client
// (crypto/tls, quic-go) returns at the end of its own half of the handshake, and the
// listener's half (verifying the client's certificate) overlaps the next dial.
type accepts chan error

func newAccepts() accepts { return make(accepts, 16) }

// done reports one listener-side handshake; it never blocks the listener.
func (a accepts) done(err error) {
	select {
	case a <- err:
	default:
	}
}

// wait returns the outcome of the next listener-side handshake.
func (a accepts) wait(ctx context.Context) error {
	select {
	case err := <-a:
		if err != nil {
			return fmt.Errorf("listener side: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runIdleMemory connects IdleConns client nodes to one server node and reports the memory
// the connections add, per connection end: live heap plus goroutine stacks, after garbage
// collection. The nodes exist before the first measurement, so what a node costs without
// connections is not counted; what a connection costs on both of its nodes (per-peer state
// and the goroutines serving it included) is.
func runIdleMemory(ctx context.Context, s System, size Size) ([]float64, error) {
	nodes, err := s.Nodes(ctx, size.IdleConns+1)
	if err != nil {
		return nil, fmt.Errorf("%s: nodes: %w", s.Name, err)
	}
	defer closeNodes(nodes)
	server := nodes[0]
	pairs := make([]*Pair, 0, size.IdleConns)
	defer func() {
		for _, p := range pairs {
			p.Close()
		}
	}()
	before := memoryInUse()
	for _, n := range nodes[1:] {
		p, err := n.Connect(ctx, server)
		if err != nil {
			return nil, fmt.Errorf("%s: connect: %w", s.Name, err)
		}
		pairs = append(pairs, p)
	}
	time.Sleep(100 * time.Millisecond) // let handshakes settle
	after := memoryInUse()
	return []float64{float64(after-before) / float64(2*len(pairs)) / 1024}, nil
}

// memoryInUse is the live heap and the goroutine stacks, in bytes, after two collections
// (the second empties sync.Pools' victim caches).
func memoryInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// runFanout connects one sender node to FanoutPeers receiver nodes, then Fanouts times sends
// one 256 B message on every connection, one after the other from one goroutine (as an
// application broadcasting to its peers would), and measures the time from the first Send
// until the last receiver has the message. The next fan-out starts once all have arrived.
// It reports the median.
func runFanout(ctx context.Context, s System, size Size) ([]float64, error) {
	nodes, err := s.Nodes(ctx, size.FanoutPeers+1)
	if err != nil {
		return nil, fmt.Errorf("%s: nodes: %w", s.Name, err)
	}
	defer closeNodes(nodes)
	pairs := make([]*Pair, 0, size.FanoutPeers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for _, p := range pairs {
			p.Close() // unblocks the receivers
		}
		wg.Wait()
	}()
	for _, n := range nodes[1:] {
		p, err := nodes[0].Connect(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("%s: connect: %w", s.Name, err)
		}
		pairs = append(pairs, p)
	}
	arrivals := make(chan time.Time, len(pairs))
	errc := make(chan error, len(pairs))
	for _, p := range pairs {
		wg.Go(func() {
			for range size.Fanouts {
				if _, err := p.Server.Recv(ctx); err != nil {
					errc <- err
					return
				}
				select {
				case arrivals <- time.Now():
				case <-stop:
					return
				}
			}
		})
	}
	msg := make([]byte, MessageSize)
	took := make([]time.Duration, 0, size.Fanouts)
	for range size.Fanouts {
		start := time.Now()
		for _, p := range pairs {
			if err := p.Client.Send(ctx, msg); err != nil {
				return nil, fmt.Errorf("%s: send: %w", s.Name, err)
			}
		}
		var last time.Time
		for range pairs {
			select {
			case t := <-arrivals:
				if t.After(last) {
					last = t
				}
			case err := <-errc:
				return nil, fmt.Errorf("%s: receive: %w", s.Name, err)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		took = append(took, last.Sub(start))
	}
	slices.Sort(took)
	return []float64{percentile(took, 0.50)}, nil
}
