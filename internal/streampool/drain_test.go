package streampool_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// writeStream opens a raw stream on c and writes b to it, finishing it when fin.
func writeStream(t *testing.T, ctx context.Context, c session.Conn, b []byte, fin bool) session.SendStream {
	t.Helper()
	st, err := c.OpenUniStream(ctx)
	require.NoError(t, err)
	_, err = st.Write(b)
	require.NoError(t, err)
	if fin {
		require.NoError(t, st.Close())
	}
	return st
}

// requireAnswer waits for the peer's next stream on c and checks it is a control stream
// carrying only the answer.
func requireAnswer(t *testing.T, ctx context.Context, c session.Conn) {
	t.Helper()
	answer, err := c.AcceptUniStream(ctx)
	require.NoError(t, err)
	got, err := io.ReadAll(answer)
	require.NoError(t, err)
	require.Equal(t, []byte{0x01, 0x03}, got, "a control stream with DRAIN_DONE")
}

// A pool answers a drain request only once every stream that arrived before it has been
// read to its end, on a control stream of its own carrying exactly the answer.
func TestDrainRequestAnsweredAfterEarlierStreams(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		// An earlier stream with a message, left open.
		early := writeStream(t, ctx, p.Client, msgStream(frame(payload(1, 100))), false)
		require.Equal(t, uint64(1), recvSeq(t, ctx, receiver, 100))
		writeStream(t, ctx, p.Client, []byte{0x01, 0x02}, true)

		// No answer while the earlier stream is unfinished.
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := p.Client.AcceptUniStream(wctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)

		// Its last message and its end: now the answer comes.
		_, err = early.Write(frame(payload(2, 100)))
		require.NoError(t, err)
		require.NoError(t, early.Close())
		requireAnswer(t, ctx, p.Client)
		require.Equal(t, uint64(2), recvSeq(t, ctx, receiver, 100))
	})
}

// With nothing unread before it, the request is answered at once.
func TestDrainRequestAnsweredAtOnce(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		writeStream(t, ctx, p.Client, msgStream(frame(payload(1, 100))), true)
		writeStream(t, ctx, p.Client, []byte{0x01, 0x02}, true)
		requireAnswer(t, ctx, p.Client)
	})
}

// Drain with several send streams waits for all of them, here held up by a receiver that
// does not call Recv, and returns once they are read.
func TestDrainWaitsForEverySendStream(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{SendStreams: 4})
		receiver := newPool(t, p.Server, streampool.Config{ReceiveQueue: 1})
		ctx := testCtx(t, 20*time.Second)
		const n, size = 40, 2000
		for i := range n {
			require.NoError(t, sender.Send(ctx, payload(uint64(i), size)))
		}

		drained := make(chan error, 1)
		go func() { drained <- sender.Drain(ctx) }()
		select {
		case err := <-drained:
			t.Fatalf("Drain returned (%v) before the peer read the messages", err)
		case <-time.After(300 * time.Millisecond):
		}

		seen := make(map[uint64]bool)
		for range n {
			seen[recvSeq(t, ctx, receiver, size)] = true
		}
		require.Len(t, seen, n)
		require.NoError(t, <-drained)
		// Every message was read: closing now loses nothing (and nothing is left to Recv).
		require.NoError(t, p.Client.CloseWithError(0, "done"))
		_, err := receiver.Recv(ctx)
		require.Error(t, err)
	})
}

// A pool that never sent has nothing to wait for: Drain returns at once, even though the
// peer runs no pool that could answer.
func TestDrainWithoutSendsAsksNothing(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)
		require.NoError(t, sender.Drain(ctx))
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := p.Server.AcceptUniStream(wctx)
		require.ErrorIs(t, err, context.DeadlineExceeded, "no request was sent")
	})
}

// Both ends draining at once answer each other; every message of both arrives.
func TestDrainBothWays(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		a := newPool(t, p.Client, streampool.Config{})
		b := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)
		const n, size = 50, 500
		for i := range n {
			require.NoError(t, a.Send(ctx, payload(uint64(i), size)))
			require.NoError(t, b.Send(ctx, payload(uint64(i), size)))
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, pool := range []*streampool.Pool{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = pool.Drain(ctx)
			}()
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		for i := range n {
			require.Equal(t, uint64(i), recvSeq(t, ctx, a, size))
			require.Equal(t, uint64(i), recvSeq(t, ctx, b, size))
		}
	})
}
