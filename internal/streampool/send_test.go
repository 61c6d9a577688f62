package streampool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// After the peer stops the send stream, Sends fail with the peer's code, and the next Send
// opens a fresh stream that carries its message intact.
func TestSendAfterStreamResetOpensFreshStream(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		pool := newPool(t, p.Client, streampool.Config{Timeout: 2 * time.Second})
		ctx := testCtx(t, 10*time.Second)
		const size, code = 64, session.StreamErrorCode(0x42)

		require.NoError(t, pool.Send(ctx, payload(0, size)))
		rs, err := p.Server.AcceptUniStream(ctx)
		require.NoError(t, err)
		msg, err := messageReader(t, rs).ReadMessage()
		require.NoError(t, err)
		_, err = checkPayload(msg, size)
		require.NoError(t, err)
		rs.CancelRead(code)

		var reset *session.StreamResetError
		for seq := uint64(1); ; seq++ {
			err := pool.Send(ctx, payload(seq, size))
			if err != nil {
				require.ErrorAs(t, err, &reset)
				break
			}
			require.NoError(t, ctx.Err(), "Sends kept succeeding on a stopped stream")
			time.Sleep(time.Millisecond)
		}
		require.True(t, reset.Remote)
		require.Equal(t, code, reset.Code)
		require.Equal(t, rs.StreamID(), reset.StreamID)

		require.NoError(t, pool.Send(ctx, payload(1000, size)))
		rs2, err := p.Server.AcceptUniStream(ctx)
		require.NoError(t, err)
		require.NotEqual(t, rs.StreamID(), rs2.StreamID())
		msg, err = messageReader(t, rs2).ReadMessage()
		require.NoError(t, err)
		seq, err := checkPayload(msg, size)
		require.NoError(t, err)
		require.Equal(t, uint64(1000), seq)
	})
}

// Concurrent senders' small messages share stream writes; all arrive intact.
func TestSendCoalescesConcurrentSenders(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		// Writes to a loopback stream return so fast (quic-go copies a small write and returns)
		// that few senders arrive during one; a write of 200µs stands for a busier path and
		// makes the coalescing independent of the scheduler.
		cc := &countingConn{Conn: p.Client, delay: 200 * time.Microsecond}
		sender := newPool(t, cc, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)
		const goroutines, each, size = 32, 200, 100

		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					if err := sender.Send(ctx, payload(uint64(g)<<32|uint64(i), size)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		seen := make(map[uint64]bool, goroutines*each)
		for range goroutines * each {
			seq := recvSeq(t, ctx, receiver, size)
			require.False(t, seen[seq], "message %#x twice", seq)
			seen[seq] = true
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		writes := cc.writes.Load()
		t.Logf("%d messages in %d writes", goroutines*each, writes)
		require.Less(t, writes, int64(goroutines*each/4))
	})
}

// A lone sender's messages go out in one stream write each.
func TestSendAloneWritesOncePerMessage(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		cc := &countingConn{Conn: p.Client}
		sender := newPool(t, cc, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)
		const n, size = 100, 300

		for i := range n {
			require.NoError(t, sender.Send(ctx, payload(uint64(i), size)))
			require.Equal(t, int64(i+1), cc.writes.Load())
		}
		for i := range n {
			require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, size))
		}
	})
}

// With one send stream, one goroutine's messages arrive in the order sent.
func TestSendOrderOneGoroutine(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{SendStreams: 1})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)
		const n, size = 5000, 40

		sent := make(chan error, 1)
		go func() {
			for i := range n {
				if err := sender.Send(ctx, payload(uint64(i), size)); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		for i := range n {
			require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, size))
		}
		require.NoError(t, <-sent)
	})
}

// With the default single send stream, each of several goroutines' messages arrive in that
// goroutine's order.
func TestSendOrderPerGoroutine(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)
		const goroutines, each = 8, 500

		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					// Mixed sizes: small ones coalesce, large ones take the direct path.
					size := 16 + (i%7)*20
					if i%50 == 0 {
						size = 100 << 10
					}
					if err := sender.Send(ctx, payload(uint64(g)<<32|uint64(i), size)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		next := make([]uint64, goroutines)
		for range goroutines * each {
			m, err := receiver.Recv(ctx)
			require.NoError(t, err)
			seq, err := checkPayload(m.Data, len(m.Data))
			require.NoError(t, err)
			g, i := seq>>32, seq&(1<<32-1)
			require.Equal(t, next[g], i, "goroutine %d", g)
			next[g]++
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
}

// When the peer stops calling Recv, the bounded queue and flow control stall the sender, whose
// write times out after Config.Timeout.
func TestSendTimesOutWhenPeerDoesNotRecv(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		const timeout = 300 * time.Millisecond
		sender := newPool(t, p.Client, streampool.Config{Timeout: timeout})
		newPool(t, p.Server, streampool.Config{ReceiveQueue: 2})
		ctx := testCtx(t, 20*time.Second)

		took, _, err := sendUntilError(ctx, sender, 32<<10)
		var te *session.TimeoutError
		require.ErrorAs(t, err, &te)
		require.Equal(t, "write", te.Op)
		require.Equal(t, timeout, te.After)
		require.GreaterOrEqual(t, took, timeout)
		require.Less(t, took, timeout+3*time.Second)
	})
}

// Messages whose Send succeeded before a write timed out are still delivered, intact and in
// order, once the peer calls Recv again.
func TestSendTimeoutKeepsAcceptedMessages(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{Timeout: 300 * time.Millisecond})
		receiver := newPool(t, p.Server, streampool.Config{ReceiveQueue: 2})
		ctx := testCtx(t, 20*time.Second)
		const size = 32 << 10

		_, accepted, err := sendUntilError(ctx, sender, size)
		var te *session.TimeoutError
		require.ErrorAs(t, err, &te)

		got := 0
		for {
			short, cancel := context.WithTimeout(ctx, time.Second)
			m, err := receiver.Recv(short)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			require.NoError(t, err)
			seq, err := checkPayload(m.Data, size)
			require.NoError(t, err)
			require.Equal(t, uint64(got), seq)
			got++
		}
		require.Equal(t, accepted, got, "messages whose Send succeeded but never arrived")
	})
}

// sendUntilError sends numbered messages of size bytes until a Send fails, and returns the
// error, how long the failing Send took and how many Sends succeeded.
func sendUntilError(ctx context.Context, p *streampool.Pool, size int) (took time.Duration, accepted int, err error) {
	for i := 0; ; i++ {
		start := time.Now()
		if err := p.Send(ctx, payload(uint64(i), size)); err != nil {
			return time.Since(start), i, err
		}
		if ctx.Err() != nil {
			return 0, i, fmt.Errorf("no Send failed: %w", ctx.Err())
		}
	}
}

// When the peer grants no unidirectional stream, Send fails with a timeout after
// Config.Timeout.
func TestSendOpenTimesOut(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := connect(t, f, func(_, s *session.Config) { s.MaxIncomingUniStreams = -1 })
		const timeout = 500 * time.Millisecond
		pool := newPool(t, p.Client, streampool.Config{Timeout: timeout})

		start := time.Now()
		err := pool.Send(context.Background(), []byte("hello"))
		took := time.Since(start)
		var te *session.TimeoutError
		require.ErrorAs(t, err, &te)
		require.Equal(t, timeout, te.After)
		require.GreaterOrEqual(t, took, timeout)
		require.Less(t, took, timeout+3*time.Second)
	})
}

// Cancelling ctx while Send waits for stream credit returns ctx's error at once.
func TestSendOpenCancelled(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := connect(t, f, func(_, s *session.Config) { s.MaxIncomingUniStreams = -1 })
		pool := newPool(t, p.Client, streampool.Config{Timeout: 10 * time.Second})

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := pool.Send(ctx, []byte("hello"))
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), time.Second)
	})
}

// A Send with an already cancelled ctx returns ctx's error at once.
func TestSendCancelledContext(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		pool := newPool(t, p.Client, streampool.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		for _, size := range []int{100, 1 << 20} {
			start := time.Now()
			err := pool.Send(ctx, payload(0, size))
			require.ErrorIs(t, err, context.Canceled)
			require.Less(t, time.Since(start), time.Second)
		}
	})
}

// A Send with an already cancelled ctx does not disturb messages sent before it: the stream
// they were written to is not reset.
func TestSendCancelledContextKeepsEarlierMessages(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()

		const size = 100
		require.NoError(t, sender.Send(ctx, payload(0, size)))
		require.ErrorIs(t, sender.Send(cancelled, payload(99, size)), context.Canceled)
		require.NoError(t, sender.Send(ctx, payload(1, size)))
		require.Equal(t, uint64(0), recvSeq(t, ctx, receiver, size))
		require.Equal(t, uint64(1), recvSeq(t, ctx, receiver, size))
	})
}

// A Send waiting behind a stalled write returns ctx's error promptly when ctx is cancelled.
func TestSendCancelledBehindStalledWrite(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		for _, size := range []int{100, 1 << 20} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				p := sessiontest.Connect(t, f, nil, nil)
				// Nobody accepts the stream: flow control stalls the first big write.
				pool := newPool(t, p.Client, streampool.Config{Timeout: 10 * time.Second})

				stallCtx, stopStall := context.WithCancel(context.Background())
				defer stopStall()
				stalled := make(chan error, 1)
				big := payload(0, 8<<20) // before the clock starts: slow under -race
				go func() { stalled <- pool.Send(stallCtx, big) }()
				eventually(t, pool.Writing, "the big write is in progress")

				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				start := time.Now()
				err := pool.Send(ctx, payload(1, size))
				require.ErrorIs(t, err, context.Canceled)
				require.Less(t, time.Since(start), time.Second)

				select {
				case err := <-stalled:
					t.Fatalf("the stalled Send returned early: %v", err)
				default:
				}
				stopStall()
				require.ErrorIs(t, <-stalled, context.Canceled)
			})
		}
	})
}

// A message over the sender's MaxMessageSize is refused before anything is written; the
// messages around it arrive.
func TestSendTooLarge(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		// 1000 takes the coalescing path, 128 KiB the direct path for large messages.
		for _, limit := range []uint32{1000, 128 << 10} {
			t.Run(fmt.Sprint(limit), func(t *testing.T) {
				p := sessiontest.Connect(t, f, nil, nil)
				cc := &countingConn{Conn: p.Client}
				sender := newPool(t, cc, streampool.Config{MaxMessageSize: limit})
				receiver := newPool(t, p.Server, streampool.Config{})
				ctx := testCtx(t, 10*time.Second)

				require.NoError(t, sender.Send(ctx, payload(0, 64)))
				writes := cc.writes.Load()
				err := sender.Send(ctx, payload(1, int(limit)+1))
				var tl *framing.TooLargeError
				require.ErrorAs(t, err, &tl)
				require.Equal(t, uint64(limit)+1, tl.Size)
				require.Equal(t, uint64(limit), tl.Max)
				require.Equal(t, writes, cc.writes.Load(), "wrote to the stream")
				require.NoError(t, sender.Send(ctx, payload(2, int(limit))))

				require.Equal(t, uint64(0), recvSeq(t, ctx, receiver, 64))
				require.Equal(t, uint64(2), recvSeq(t, ctx, receiver, int(limit)))
			})
		}
	})
}

// A message over the receiver's MaxMessageSize makes it stop the stream: it counts the
// refusal, the sender gets a *PeerRefusedError, and the sender's next stream works.
func TestRecvRefusesTooLarge(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{MaxMessageSize: 1000})
		ctx := testCtx(t, 10*time.Second)

		require.NoError(t, sender.Send(ctx, payload(0, 1000)))
		require.Equal(t, uint64(0), recvSeq(t, ctx, receiver, 1000))

		var refused *streampool.PeerRefusedError
		err := sender.Send(ctx, payload(1, 1001))
		for seq := uint64(2); err == nil; seq++ {
			require.NoError(t, ctx.Err(), "Sends kept succeeding on a refused stream")
			time.Sleep(time.Millisecond)
			err = sender.Send(ctx, payload(seq, 100))
		}
		require.ErrorAs(t, err, &refused)
		require.Equal(t, uint64(1), receiver.Refused())

		require.NoError(t, sender.Send(ctx, payload(500, 100)))
		require.Equal(t, uint64(500), recvSeq(t, ctx, receiver, 100))
	})
}

// When the goroutine writing a coalesced batch has its ctx cancelled, the other Sends in that
// batch, whose own ctx is alive, do not fail with the writer's ctx error.
func TestSendNotFailedByAnotherSendersContext(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)

		// Which of two waiting Sends writes their shared batch is up to the scheduler; over
		// 20 rounds, alternating their order, the cancelled one is the writer at least once.
		for round := range 20 {
			gc := newGatedConn(p.Client)
			pool := newPool(t, gc, streampool.Config{})

			first := make(chan error, 1)
			go func() { first <- pool.Send(ctx, payload(0, 100)) }()
			<-gc.entered // the first Send is writing; the next two wait in one batch

			actx, cancelA := context.WithCancel(ctx)
			errA, errB := make(chan error, 1), make(chan error, 1)
			sendA := func() { errA <- pool.Send(actx, payload(1, 100)) }
			sendB := func() { errB <- pool.Send(ctx, payload(2, 100)) }
			// Alternate which starts waiting first: the scheduler tends to favour one.
			if round%2 == 1 {
				sendA, sendB = sendB, sendA
			}
			go sendA()
			eventually(t, func() bool { return pool.SendsBatched() == 1 }, "the first of A and B waits in the batch")
			go sendB()
			eventually(t, func() bool { return pool.SendsBatched() == 2 }, "A and B wait in one batch")

			gc.release <- struct{}{}
			require.NoError(t, <-first)
			// A or B writes the batch of both; the gate holds the write before it checks the
			// writer's ctx, so that a write made with A's ctx fails here at once.
			<-gc.entered
			cancelA()
			gc.release <- struct{}{}
			gc.open()

			<-errA
			require.NoError(t, <-errB, "round %d: B's Send failed with A's ctx error", round)
			cancelA()
			require.NoError(t, pool.Close())
		}
	})
}

// Every stream the pool opens for messages starts with the stream type, in the same write
// as the first message: a raw reader sees 0x00, then the frames.
func TestSendStreamStartsWithType(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		cc := &countingConn{Conn: p.Client}
		sender := newPool(t, cc, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		require.NoError(t, sender.Send(ctx, []byte("hi")))
		require.NoError(t, sender.Send(ctx, []byte("abc")))
		require.Equal(t, int64(2), cc.writes.Load(), "one write per message, none for the type")

		rs, err := p.Server.AcceptUniStream(ctx)
		require.NoError(t, err)
		want := []byte{0x00, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 3, 'a', 'b', 'c'}
		got := make([]byte, len(want))
		_, err = io.ReadFull(rs, got)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}
