package sendbuf_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/internal/sendbuf"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair connects two QUIC sessions (whose unidirectional send streams are buffered) and
// returns the sender's buffered stream and the receiver's end of it once data arrived.
func pair(t *testing.T) (*sessiontest.Pair, *sendbuf.Stream) {
	t.Helper()
	var quic sessiontest.CoreFactory
	for _, f := range sessiontest.Cores() {
		if f.Name == "quic" {
			quic = f
		}
	}
	p := sessiontest.Connect(t, quic, nil, nil)
	st, err := p.Client.OpenUniStream(context.Background())
	require.NoError(t, err)
	bs, ok := st.(*sendbuf.Stream)
	require.True(t, ok, "the QUIC core buffers its unidirectional send streams")
	return p, bs
}

func accept(t *testing.T, p *sessiontest.Pair) session.ReceiveStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := p.Server.AcceptUniStream(ctx)
	require.NoError(t, err)
	return rs
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestWritesArriveInOrderThenFin(t *testing.T) {
	p, s := pair(t)
	type result struct {
		data []byte
		err  error
	}
	received := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rs, err := p.Server.AcceptUniStream(ctx)
		if err != nil {
			received <- result{err: err}
			return
		}
		b, err := io.ReadAll(rs)
		received <- result{b, err}
	}()
	var want []byte
	for i := range 2000 {
		m := pattern(100+i%200, byte(i))
		want = append(want, m...)
		n, err := s.Write(m)
		require.NoError(t, err)
		require.Equal(t, len(m), n)
	}
	large := pattern(sendbuf.CopyLimit*3, 9) // handed over uncopied, after the buffered data
	_, err := s.Write(large)
	require.NoError(t, err)
	want = append(want, large...)
	require.NoError(t, s.Close())
	_, err = s.Write([]byte("x"))
	require.ErrorIs(t, err, sendbuf.ErrWriteAfterClose)

	r := <-received
	require.NoError(t, r.err, "the FIN follows the buffered data")
	require.True(t, bytes.Equal(want, r.data), "got %d bytes, want %d", len(r.data), len(want))
}

func TestBufferIsBoundedAndTimeoutKeepsAcceptedData(t *testing.T) {
	p, s := pair(t)
	chunk := make([]byte, 16<<10)
	accepted := 0
	for {
		require.NoError(t, s.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
		n, err := s.Write(chunk)
		if err != nil {
			var te *session.TimeoutError
			require.True(t, errors.As(err, &te), "%v", err)
			require.Zero(t, n, "a write that found no room took nothing")
			break
		}
		accepted += n
		require.Less(t, accepted, 8<<20, "writes never block: the buffer is unbounded")
	}
	// What was accepted before the timeout is still delivered, then the FIN.
	require.NoError(t, s.SetWriteDeadline(time.Time{}))
	require.NoError(t, s.Close())
	got, err := io.ReadAll(accept(t, p))
	require.NoError(t, err)
	require.Len(t, got, accepted)
}

func TestCancelWriteDropsBufferedData(t *testing.T) {
	p, s := pair(t)
	_, err := s.Write([]byte("hello"))
	require.NoError(t, err)
	rs := accept(t, p) // the first bytes went out
	// Beyond the peer's window the rest stays buffered, until the buffer is full.
	require.NoError(t, s.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	for {
		if _, err = s.Write(make([]byte, 16<<10)); err != nil {
			var te *session.TimeoutError
			require.ErrorAs(t, err, &te)
			break
		}
	}
	s.CancelWrite(7)
	_, err = io.ReadAll(rs)
	var re *session.StreamResetError
	require.ErrorAs(t, err, &re)
	require.Equal(t, session.StreamErrorCode(7), re.Code)
	_, err = s.Write([]byte("x"))
	require.Error(t, err, "a cancelled stream refuses writes")
	require.NoError(t, s.Close(), "Close after CancelWrite is a no-op")
}

func TestConnectionCloseStopsTheFlusher(t *testing.T) {
	p, s := pair(t)
	// Fill the peer's window and the buffer: the flusher blocks in the stream's Write.
	require.NoError(t, s.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	for {
		if _, err := s.Write(make([]byte, 16<<10)); err != nil {
			break
		}
	}
	require.NoError(t, p.Client.CloseWithError(5, "bye"))
	require.Eventually(t, func() bool {
		_, err := s.Write([]byte("x"))
		var ce *session.CloseError
		return errors.As(err, &ce)
	}, 5*time.Second, 10*time.Millisecond, "writes report the closed connection")
	// goleak (TestMain) checks that the flusher goroutine ended.
}

func TestLargeWriteCutByDeadlineKeepsBufferedData(t *testing.T) {
	p, s := pair(t)
	small := pattern(1000, 1)
	_, err := s.Write(small)
	require.NoError(t, err)
	// The peer does not read: the large write takes the window and then times out.
	require.NoError(t, s.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	n, err := s.Write(pattern(8<<20, 2))
	var te *session.TimeoutError
	require.ErrorAs(t, err, &te)
	require.Less(t, n, 8<<20)
	require.NoError(t, s.SetWriteDeadline(time.Time{}))
	require.NoError(t, s.Close())
	got, err := io.ReadAll(accept(t, p))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(got), len(small))
	require.Equal(t, small, got[:len(small)], "the buffered bytes went out first, whole")
	require.Equal(t, len(small)+n, len(got), "then exactly what the large write reported")
}
