package streampool_test

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// A steady-state Send of a small message does not allocate (but for a rare refill of a
// sync.Pool emptied by a garbage collection).
//
// testing.AllocsPerRun counts every allocation in the process, including the session's own
// goroutines (packet handling, acknowledgements) which run whether or not the pool
// allocates; it is logged for reference. The assertion counts, with the memory profiler at
// full rate, only the allocations made on Send's call stack: by the pool and by the stream
// write it calls.
func TestSendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		pool := newPool(t, p.Client, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)
		msg := payload(0, 256)

		// The receiving side drains into io.Discard, whose buffer is pooled.
		require.NoError(t, pool.Send(ctx, msg))
		rs, err := p.Server.AcceptUniStream(ctx)
		require.NoError(t, err)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, rs)
		}()
		defer func() { <-drained }() // ends when the connection closes
		defer func() { _ = p.Client.CloseWithError(0, "") }()

		// With a context that can end (as callers' contexts mostly are), a write that cannot
		// wait must not register to be interrupted: that allocates.
		for _, c := range []struct {
			name string
			ctx  context.Context
		}{{"background", context.Background()}, {"cancelable", ctx}} {
			send := func() {
				if err := pool.Send(c.ctx, msg); err != nil {
					panic(err)
				}
			}
			const runs = 2000
			perSend := allocsOnStack(t, "github.com/peerwire/peerwire/internal/streampool.(*Pool).Send", runs, send)
			t.Logf("%s context: process-wide: %.0f allocations per Send (testing.AllocsPerRun)", c.name, testing.AllocsPerRun(runs, send))
			t.Logf("%s context: on Send's call stack: %.3f allocations per Send", c.name, perSend)
			// Not exactly zero: sync.Pool buffers (quic-go's stream frames) are refilled after
			// a garbage collection now and then.
			require.Less(t, perSend, 0.05, "allocations per Send on its call stack, %s context", c.name)
		}
	})
}

// allocsOnStack returns the average number of allocations made, per call of run, by frames
// below the function named fn. It profiles every allocation while it runs.
func allocsOnStack(t *testing.T, fn string, runs int, run func()) float64 {
	t.Helper()
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	// Warm up, and allocate enough to pass the sampling point drawn at the old rate.
	for range runs {
		run()
	}
	for range 1024 {
		allocSink = make([]byte, 1024)
	}
	before := profiledAllocs(fn)
	for range runs {
		run()
	}
	return float64(profiledAllocs(fn)-before) / float64(runs)
}

var allocSink []byte

// profiledAllocs sums the allocations recorded in the memory profile on stacks through fn.
func profiledAllocs(fn string) int64 {
	// The profile lags up to two garbage collections behind.
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for n, _ := runtime.MemProfile(nil, true); ; {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var total int64
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			if f.Function == fn {
				total += r.AllocObjects
				break
			}
			if !more {
				break
			}
		}
	}
	return total
}
