package streampool_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// holdPartialMessage connects a pool on f to a raw client stream and leaves the pool's reader
// holding part of a message: a whole message first (received, which proves the pool reads the
// stream), then the first 10 bytes of a 1,000-byte one.
func holdPartialMessage(t *testing.T, f sessiontest.CoreFactory) (*sessiontest.Pair, *streampool.Pool, session.SendStream, context.Context) {
	t.Helper()
	p := sessiontest.Connect(t, f, nil, nil)
	counted := newReadCountingConn(p.Server)
	pool := newPool(t, counted, streampool.Config{})
	ctx := testCtx(t, 10*time.Second)

	st, err := p.Client.OpenUniStream(ctx)
	require.NoError(t, err)
	start := msgStream(frame([]byte("whole")))
	_, err = st.Write(start)
	require.NoError(t, err)
	m, err := pool.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "whole", string(m.Data))

	partial := binary.BigEndian.AppendUint32(nil, 1000)
	partial = append(partial, make([]byte, 10)...)
	_, err = st.Write(partial)
	require.NoError(t, err)
	counted.waitRead(t, ctx, len(start)+len(partial))
	return p, pool, st, ctx
}

// A message cut off because the peer's connection died is never delivered: Recv returns the
// close error instead.
func TestRecvDropsMessageCutByConnectionClose(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p, pool, _, ctx := holdPartialMessage(t, f)
		require.NoError(t, p.Client.CloseWithError(0x9, "killed"))

		for range 2 {
			m, err := pool.Recv(ctx)
			var ce *session.CloseError
			require.ErrorAs(t, err, &ce, "got message of %d bytes", len(m.Data))
			require.True(t, ce.Remote)
			require.Equal(t, uint64(0x9), ce.Code)
			require.Nil(t, m.Data)
		}
	})
}

// A message cut off by a stream reset is discarded; messages on other streams still arrive.
func TestRecvDropsMessageCutByStreamReset(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p, pool, st, ctx := holdPartialMessage(t, f)
		st.CancelWrite(0x7)

		st2, err := p.Client.OpenUniStream(ctx)
		require.NoError(t, err)
		_, err = st2.Write(msgStream(frame([]byte("after"))))
		require.NoError(t, err)
		require.NoError(t, st2.Close())

		m, err := pool.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "after", string(m.Data))

		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		m, err = pool.Recv(short)
		require.ErrorIs(t, err, context.DeadlineExceeded, "got message of %d bytes", len(m.Data))
	})
}

// Message.Transfer is never negative and, for a message large enough to span many packets,
// measures a positive time.
func TestRecvTransferDuration(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		const big = 4 << 20
		require.NoError(t, sender.Send(ctx, payload(0, 16)))
		require.NoError(t, sender.Send(ctx, payload(1, big)))

		m, err := receiver.Recv(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, m.Transfer, time.Duration(0))
		m, err = receiver.Recv(ctx)
		require.NoError(t, err)
		_, err = checkPayload(m.Data, big)
		require.NoError(t, err)
		require.Positive(t, m.Transfer)
	})
}

// A receiver whose queue keeps filling up gets every message, whole and in order, whatever
// the sizes: the reader that waits for room loses nothing and splits nothing.
func TestRecvSlowReceiverGetsEveryMessageInOrder(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{ReceiveQueue: 2})
		ctx := testCtx(t, 20*time.Second)
		sendRecvInOrder(t, ctx, sender, receiver, []int{9, 300, 5000, 70_000, 8, 17, 16 << 10, 100}, 400, 50)
	})
}

// sendRecvInOrder sends n messages of the sizes given (cycled) on one goroutine and receives
// them on this one, checking each and their order; before every pauseEvery-th it waits until
// the receive queue is full (a reader waits for room) or every message was sent.
func sendRecvInOrder(t *testing.T, ctx context.Context, sender, receiver *streampool.Pool, sizes []int, n, pauseEvery int) {
	t.Helper()
	errc := make(chan error, 1)
	var sent atomic.Bool
	go func() {
		defer sent.Store(true)
		for i := range n {
			if err := sender.Send(ctx, payload(uint64(i), sizes[i%len(sizes)])); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		if i%pauseEvery == 0 {
			eventually(t, func() bool { return receiver.ReadersWaiting() > 0 || sent.Load() }, "the receive queue fills")
		}
		require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, sizes[i%len(sizes)]))
	}
	require.NoError(t, <-errc)
}

// Messages queued behind a full queue before a message too large are delivered, and then the
// refusal counted.
func TestRecvRefusesTooLargeBehindFullQueue(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		receiver := newPool(t, p.Server, streampool.Config{ReceiveQueue: 1, MaxMessageSize: 100})
		ctx := testCtx(t, 10*time.Second)

		var b []byte
		for i := range 3 {
			b = append(b, frame(payload(uint64(i), 50))...)
		}
		b = binary.BigEndian.AppendUint32(b, 101)
		st, err := p.Client.OpenUniStream(ctx)
		require.NoError(t, err)
		_, err = st.Write(msgStream(b))
		require.NoError(t, err)
		// The first message fills the queue; the reader holds the second.
		eventually(t, func() bool { return receiver.ReadersWaiting() > 0 }, "the receive queue fills")
		for i := range 3 {
			require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, 50))
		}
		require.Eventually(t, func() bool { return receiver.Refused() == 1 }, 5*time.Second, time.Millisecond)
	})
}

// Concurrent Recvs on either core get every message exactly once.
func TestConcurrentRecvsGetEveryMessage(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{SendStreams: 3})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)

		const n, receivers = 3000, 4
		var mu sync.Mutex
		seen := make(map[uint64]int)
		var wg sync.WaitGroup
		errs := make(chan error, receivers)
		for range receivers {
			wg.Go(func() {
				for {
					m, err := receiver.Recv(ctx)
					if err != nil {
						errs <- err
						return
					}
					seq, err := checkPayload(m.Data, 64)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					seen[seq]++
					done := len(seen) == n
					mu.Unlock()
					if done {
						errs <- nil
						return
					}
				}
			})
		}
		for i := range n {
			require.NoError(t, sender.Send(ctx, payload(uint64(i), 64)))
		}
		require.NoError(t, <-errs)
		mu.Lock()
		for seq, k := range seen {
			require.Equal(t, 1, k, "message %d delivered %d times", seq, k)
		}
		require.Len(t, seen, n)
		mu.Unlock()
		require.NoError(t, receiver.Close()) // ends the other receivers
		wg.Wait()
	})
}

// Large messages arrive whole and in order among small ones, also when the queue is full.
func TestRecvLargeMessagesInOrder(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		for _, queue := range []int{1, 64} {
			t.Run(fmt.Sprint("queue ", queue), func(t *testing.T) {
				p := sessiontest.Connect(t, f, nil, nil)
				sender := newPool(t, p.Client, streampool.Config{})
				receiver := newPool(t, p.Server, streampool.Config{ReceiveQueue: queue})
				ctx := testCtx(t, 30*time.Second)
				sendRecvInOrder(t, ctx, sender, receiver, []int{1 << 20, 9, 200_000, 16<<10 + 1, 40_000, 1 << 20}, 24, 8)
			})
		}
	})
}
