package streampool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// Drain returns only once the peer's pool has read every message: closing the connection
// right after it loses none.
func TestDrainWaitsForPeer(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)
		// Fewer than the receive queue holds: the peer reads them all without any Recv.
		const n, size = 100, 1000

		for i := range n {
			require.NoError(t, sender.Send(ctx, payload(uint64(i), size)))
		}
		require.NoError(t, sender.Drain(ctx))
		require.NoError(t, p.Client.CloseWithError(0, "done"))

		for i := range n {
			require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, size))
		}
		_, err := receiver.Recv(ctx)
		var ce *session.CloseError
		require.ErrorAs(t, err, &ce)
	})
}

// Sends after Drain fail.
func TestSendAfterDrainFails(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		require.NoError(t, sender.Send(ctx, payload(0, 100)))
		require.NoError(t, sender.Drain(ctx))
		require.Error(t, sender.Send(ctx, payload(1, 100)))
		require.Error(t, sender.Send(ctx, payload(2, 1<<20)))
	})
}

// Drain gives up with ctx's error when the peer does not read to the end.
func TestDrainStopsAtContext(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		newPool(t, p.Server, streampool.Config{ReceiveQueue: 1})
		ctx := testCtx(t, 10*time.Second)

		// The first message fills the peer's queue and its reader holds the second, having
		// read at most 64 KiB beyond it: the rest of the stream and its end stay unread. All
		// four fit in the stream's flow-control window, so every Send completes.
		for i := range 4 {
			require.NoError(t, sender.Send(ctx, payload(uint64(i), 60<<10)))
		}

		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		require.ErrorIs(t, sender.Drain(dctx), context.DeadlineExceeded)
		require.Less(t, time.Since(start), 2*time.Second)
	})
}

// Close ends every goroutine of the pool, with inbound streams open and a Recv blocked,
// which returns an error.
func TestCloseEndsGoroutines(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		ctx := testCtx(t, 10*time.Second)
		// Goroutines of the sessions themselves are not the pools' business.
		before := goleak.IgnoreCurrent()

		a := streampool.New(p.Client, streampool.Config{})
		b := streampool.New(p.Server, streampool.Config{})
		for i := range 3 {
			require.NoError(t, a.Send(ctx, payload(uint64(i), 100)))
			require.NoError(t, b.Send(ctx, payload(uint64(i), 100)))
		}
		for i := range 3 {
			require.Equal(t, uint64(i), recvSeq(t, ctx, a, 100))
			require.Equal(t, uint64(i), recvSeq(t, ctx, b, 100))
		}
		recvd := make(chan error, 1)
		go func() {
			_, err := b.Recv(ctx)
			recvd <- err
		}()
		eventually(t, func() bool { return b.RecvsWaiting() > 0 }, "Recv waits")

		require.NoError(t, b.Close())
		require.NoError(t, a.Close())
		select {
		case err := <-recvd:
			require.Error(t, err)
			require.NoError(t, ctx.Err())
		case <-time.After(2 * time.Second):
			t.Fatal("Recv still blocked after Close")
		}
		_, err := b.Recv(ctx)
		require.Error(t, err)
		require.Error(t, b.Send(ctx, payload(9, 100)))
		goleak.VerifyNone(t, before)
	})
}

// Close ends the pool's send stream, so that the peer's reader does not wait on it forever.
func TestCloseEndsSendStream(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		pool := streampool.New(p.Client, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		require.NoError(t, pool.Send(ctx, payload(0, 100)))
		rs, err := p.Server.AcceptUniStream(ctx)
		require.NoError(t, err)
		r := messageReader(t, rs)
		_, err = r.ReadMessage()
		require.NoError(t, err)

		require.NoError(t, pool.Close())
		require.NoError(t, rs.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, err = r.ReadMessage()
		var te *session.TimeoutError
		require.False(t, errors.As(err, &te), "stream still open after Close: %v", err)
	})
}

// After the connection closes, Recv returns the messages that had arrived, in order, then
// the close error.
func TestRecvAfterConnectionCloseReturnsQueuedFirst(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		for i := range 5 {
			require.NoError(t, sender.Send(ctx, payload(uint64(i), 100)))
		}
		require.NoError(t, sender.Drain(ctx))
		require.NoError(t, p.Server.CloseWithError(0x5, "bye"))

		for i := range 5 {
			require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, 100))
		}
		_, err := receiver.Recv(ctx)
		var ce *session.CloseError
		require.ErrorAs(t, err, &ce)
		require.False(t, ce.Remote)
		require.Equal(t, uint64(0x5), ce.Code)
	})
}

// Messages a reader had already taken from the stream but could not queue (the queue was
// full) when the connection closed are still returned by Recv, in order, before the close
// error.
func TestRecvAfterConnectionCloseReturnsHeldMessages(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		counted := newReadCountingConn(p.Server)
		receiver := newPool(t, counted, streampool.Config{ReceiveQueue: 1})
		ctx := testCtx(t, 10*time.Second)

		// One write, so that the reader takes all five messages from the stream at once.
		var frames [][]byte
		for i := range 5 {
			frames = append(frames, frame(payload(uint64(i), 100)))
		}
		batch := msgStream(frames...)
		st, err := p.Client.OpenUniStream(ctx)
		require.NoError(t, err)
		_, err = st.Write(batch)
		require.NoError(t, err)
		counted.waitRead(t, ctx, len(batch))
		eventually(t, func() bool { return receiver.ReadersWaiting() > 0 }, "the reader holds a message")
		require.NoError(t, p.Client.CloseWithError(0, "bye"))
		<-p.Server.Context().Done()

		for i := range 5 {
			require.Equal(t, uint64(i), recvSeq(t, ctx, receiver, 100))
		}
		_, err = receiver.Recv(ctx)
		var ce *session.CloseError
		require.ErrorAs(t, err, &ce)
	})
}

// An empty message arrives as an empty message.
func TestEmptyMessage(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		sender := newPool(t, p.Client, streampool.Config{})
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 10*time.Second)

		require.NoError(t, sender.Send(ctx, nil))
		require.NoError(t, sender.Send(ctx, []byte("x")))
		m, err := receiver.Recv(ctx)
		require.NoError(t, err)
		require.NotNil(t, m.Data)
		require.Empty(t, m.Data)
		m, err = receiver.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "x", string(m.Data))
	})
}
