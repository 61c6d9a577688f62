package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Result is one measured figure of one system.
type Result struct {
	Case   string  `json:"case"`
	System string  `json:"system"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	// HigherIsBetter tells how to read ratios.
	HigherIsBetter bool `json:"higher_is_better"`
}

// Case is one measurement applied to every system.
type Case struct {
	Name           string
	Unit           string
	HigherIsBetter bool
	Run            func(ctx context.Context, s System, size Size) (float64, error)
}

// Size scales the work of each case: Tiny keeps CI fast, Full gives stable figures.
type Size struct {
	Messages   int           // small messages per throughput run
	BulkBytes  int           // bytes per bulk run
	RoundTrips int           // round trips per latency run
	Handshakes time.Duration // how long to dial repeatedly
	IdleConns  int           // connections held for the memory case
}

var (
	// Tiny is for smoke runs (CI): every case runs, the figures mean little.
	Tiny = Size{Messages: 200, BulkBytes: 1 << 20, RoundTrips: 20, Handshakes: 50 * time.Millisecond, IdleConns: 4}
	// Full is for the figures in docs/BENCHMARKS.md.
	Full = Size{Messages: 200_000, BulkBytes: 256 << 20, RoundTrips: 2000, Handshakes: 2 * time.Second, IdleConns: 200}
)

// MessageSize is the payload of the small-message case.
const MessageSize = 256

// bulkMessage is the message size of the bulk case.
const bulkMessage = 1 << 20

// Cases returns every measurement.
func Cases() []Case {
	return []Case{
		{Name: "messages-256B", Unit: "msgs/s", HigherIsBetter: true, Run: runMessages},
		{Name: "bulk", Unit: "MiB/s", HigherIsBetter: true, Run: runBulk},
		{Name: "rtt-p50", Unit: "µs", Run: runRTT},
		{Name: "handshakes", Unit: "conns/s", HigherIsBetter: true, Run: runHandshakes},
		{Name: "idle-conn-memory", Unit: "KiB/conn", Run: runIdleMemory},
	}
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
				return
			}
		}
		errc <- nil
	}()
	for range n {
		if err := p.Client.Send(ctx, msg); err != nil {
			return 0, err
		}
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func withPair(ctx context.Context, s System, f func(*Pair) (float64, error)) (float64, error) {
	p, err := s.Connect(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: connect: %w", s.Name, err)
	}
	defer p.Close()
	return f(p)
}

func runMessages(ctx context.Context, s System, size Size) (float64, error) {
	return withPair(ctx, s, func(p *Pair) (float64, error) {
		d, err := stream(ctx, p, size.Messages, MessageSize)
		return float64(size.Messages) / d.Seconds(), err
	})
}

func runBulk(ctx context.Context, s System, size Size) (float64, error) {
	return withPair(ctx, s, func(p *Pair) (float64, error) {
		n := max(size.BulkBytes/bulkMessage, 1)
		d, err := stream(ctx, p, n, bulkMessage)
		return float64(n*bulkMessage) / (1 << 20) / d.Seconds(), err
	})
}

func runRTT(ctx context.Context, s System, size Size) (float64, error) {
	return withPair(ctx, s, func(p *Pair) (float64, error) {
		var wg sync.WaitGroup
		errc := make(chan error, 1)
		wg.Go(func() {
			for range size.RoundTrips {
				m, err := p.Server.Recv(ctx)
				if err == nil {
					err = p.Server.Send(ctx, m)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
		msg := make([]byte, 64)
		rtts := make([]time.Duration, 0, size.RoundTrips)
		var err error
		for range size.RoundTrips {
			start := time.Now()
			if err = p.Client.Send(ctx, msg); err != nil {
				break
			}
			if _, err = p.Client.Recv(ctx); err != nil {
				break
			}
			rtts = append(rtts, time.Since(start))
		}
		wg.Wait()
		select {
		case e := <-errc:
			err = errors.Join(err, e)
		default:
		}
		if err != nil {
			return 0, err
		}
		slices.Sort(rtts)
		return float64(rtts[len(rtts)/2].Microseconds()) + float64(rtts[len(rtts)/2]%time.Microsecond)/1e3, nil
	})
}

func runHandshakes(ctx context.Context, s System, size Size) (float64, error) {
	dial, cleanup, err := s.Dialer(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer cleanup()
	n := 0
	start := time.Now()
	for time.Since(start) < size.Handshakes || n == 0 {
		if err := dial(ctx); err != nil {
			return 0, fmt.Errorf("%s: dial: %w", s.Name, err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// runIdleMemory holds IdleConns connected pairs and reports the heap they take, per
// connection end.
func runIdleMemory(ctx context.Context, s System, size Size) (float64, error) {
	before := heapInUse()
	pairs := make([]*Pair, 0, size.IdleConns)
	defer func() {
		for _, p := range pairs {
			p.Close()
		}
	}()
	for range size.IdleConns {
		p, err := s.Connect(ctx)
		if err != nil {
			return 0, fmt.Errorf("%s: connect: %w", s.Name, err)
		}
		pairs = append(pairs, p)
	}
	time.Sleep(100 * time.Millisecond) // let handshakes settle
	after := heapInUse()
	return float64(after-before) / float64(2*len(pairs)) / 1024, nil
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
