package streampool_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

// requireStopped opens a raw stream on c, writes start and then more than any flow-control
// window, and checks that the peer stopped the stream with code: the big write ends only
// when the peer's STOP_SENDING arrives.
func requireStopped(t *testing.T, ctx context.Context, c session.Conn, start []byte, code session.StreamErrorCode) {
	t.Helper()
	st, err := c.OpenUniStream(ctx)
	require.NoError(t, err)
	require.NoError(t, st.SetWriteDeadline(time.Now().Add(10*time.Second)))
	_, err = st.Write(append(start, make([]byte, 32<<20)...))
	var re *session.StreamResetError
	require.ErrorAs(t, err, &re)
	require.True(t, re.Remote)
	require.Equal(t, code, re.Code)
}

// A stream of a type the pool does not know is stopped with CodeUnknownStream and ignored:
// the connection goes on carrying messages.
func TestUnknownStreamTypeIsStoppedAndIgnored(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		receiver := newPool(t, p.Server, streampool.Config{})
		sender := newPool(t, p.Client, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)

		requireStopped(t, ctx, p.Client, []byte{0x05}, streampool.CodeUnknownStream)
		// A type of two bytes (the varint 0x4021 is 33).
		requireStopped(t, ctx, p.Client, []byte{0x40, 0x21}, streampool.CodeUnknownStream)

		require.NoError(t, sender.Send(ctx, payload(7, 100)))
		require.Equal(t, uint64(7), recvSeq(t, ctx, receiver, 100))
		require.NoError(t, p.Server.Context().Err())
	})
}

// A control stream with an unknown code is stopped with CodeUnknownStream, one carrying
// more than its code with CodeBadControl; both are ignored (a drain request with extra bytes
// is not answered) and the connection goes on.
func TestBadControlStreamsAreStoppedAndIgnored(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		receiver := newPool(t, p.Server, streampool.Config{})
		ctx := testCtx(t, 20*time.Second)

		requireStopped(t, ctx, p.Client, []byte{0x01, 0x7f}, streampool.CodeUnknownStream)
		requireStopped(t, ctx, p.Client, []byte{0x01, 0x02, 0x00}, streampool.CodeBadControl)
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := p.Client.AcceptUniStream(wctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "the malformed drain request was answered")

		writeStream(t, ctx, p.Client, msgStream(frame(payload(3, 100))), true)
		require.Equal(t, uint64(3), recvSeq(t, ctx, receiver, 100))
	})
}

// SendAccepted sends a control stream carrying ACCEPTED (0x01 0x01, then FIN), and the
// peer's pool signals it on Accepted; messages sent after it arrive as usual.
func TestAcceptedSignal(t *testing.T) {
	forEachCore(t, func(t *testing.T, f sessiontest.CoreFactory) {
		p := sessiontest.Connect(t, f, nil, nil)
		ctx := testCtx(t, 10*time.Second)

		// On the wire.
		raw := newPool(t, p.Server, streampool.Config{})
		require.NoError(t, raw.SendAccepted(ctx))
		rs, err := p.Client.AcceptUniStream(ctx)
		require.NoError(t, err)
		got, err := io.ReadAll(rs)
		require.NoError(t, err)
		require.Equal(t, []byte{0x01, 0x01}, got)

		// Between pools.
		dialer := newPool(t, p.Client, streampool.Config{})
		select {
		case <-dialer.Accepted():
			t.Fatal("accepted before the peer said so")
		default:
		}
		require.NoError(t, raw.SendAccepted(ctx))
		require.NoError(t, raw.Send(ctx, payload(1, 10)))
		select {
		case <-dialer.Accepted():
		case <-ctx.Done():
			t.Fatal("ACCEPTED never signalled")
		}
		require.Equal(t, uint64(1), recvSeq(t, ctx, dialer, 10))
	})
}
