package streampool_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// benchPair is a sending pool (with its writes counted) and a receiving pool drained by a
// Recv loop, on a fresh connection.
type benchPair struct {
	sender   *streampool.Pool
	conn     *countingConn
	received atomic.Int64
}

func newBenchPair(b *testing.B, f sessiontest.CoreFactory) *benchPair {
	b.Helper()
	p := sessiontest.Connect(b, f, nil, nil)
	bp := &benchPair{conn: &countingConn{Conn: p.Client}}
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // registered first, so it runs after the pools' Close ended the Recv loop
	bp.sender = newPool(b, bp.conn, streampool.Config{})
	receiver := newPool(b, p.Server, streampool.Config{})
	wg.Go(func() {
		for {
			if _, err := receiver.Recv(context.Background()); err != nil {
				return
			}
			bp.received.Add(1)
		}
	})
	return bp
}

// waitReceived waits until the receiver has n messages.
func (bp *benchPair) waitReceived(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for bp.received.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d messages", bp.received.Load(), n)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// report adds end-to-end msgs/s and MiB/s (from the first Send until the receiver had the
// last message) and how many messages went out per stream write.
func (bp *benchPair) report(b *testing.B, msgs int64, size int, elapsed time.Duration) {
	secs := elapsed.Seconds()
	b.ReportMetric(float64(msgs)/secs, "msgs/s")
	b.ReportMetric(float64(msgs)*float64(size)/secs/(1<<20), "MiB/s")
	if w := bp.conn.writes.Load(); w > 0 {
		b.ReportMetric(float64(msgs)/float64(w), "msgs/write")
	}
}

func benchmarkSend(b *testing.B, size int) {
	for _, f := range sessiontest.Cores() {
		b.Run(f.Name, func(b *testing.B) {
			bp := newBenchPair(b, f)
			msg := payload(0, size)
			ctx := context.Background()
			b.ReportAllocs()
			var n int64
			start := time.Now()
			for b.Loop() {
				if err := bp.sender.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
				n++
			}
			bp.waitReceived(b, n)
			bp.report(b, n, size, time.Since(start))
		})
	}
}

// BenchmarkSend256 sends 256 B messages from one goroutine.
func BenchmarkSend256(b *testing.B) { benchmarkSend(b, 256) }

// BenchmarkSend1MiB sends 1 MiB messages from one goroutine.
func BenchmarkSend1MiB(b *testing.B) { benchmarkSend(b, 1<<20) }

// BenchmarkSend256Parallel sends 256 B messages from 8×GOMAXPROCS goroutines at once:
// msgs/write shows how many are coalesced into one stream write. The senders' context is
// context.Background() or one that can be cancelled (as callers' contexts mostly are), which
// a Send waiting behind another's write must watch.
func BenchmarkSend256Parallel(b *testing.B) {
	const size = 256
	for _, f := range sessiontest.Cores() {
		for _, cancellable := range []bool{false, true} {
			name := f.Name + "/background"
			if cancellable {
				name = f.Name + "/cancellable"
			}
			b.Run(name, func(b *testing.B) { benchmarkSendParallel(b, f, size, cancellable) })
		}
	}
}

func benchmarkSendParallel(b *testing.B, f sessiontest.CoreFactory, size int, cancellable bool) {
	{
		{
			bp := newBenchPair(b, f)
			msg := payload(0, size)
			ctx := context.Background()
			if cancellable {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			b.ReportAllocs()
			var sent atomic.Int64
			start := time.Now()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bp.sender.Send(ctx, msg); err != nil {
						b.Error(err)
						return
					}
					sent.Add(1)
				}
			})
			bp.waitReceived(b, sent.Load())
			bp.report(b, sent.Load(), size, time.Since(start))
		}
	}
}
