package qmux

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

func tryWriter(t *testing.T, s session.Stream) session.TryWriter {
	tw, ok := s.(session.TryWriter)
	require.True(t, ok, "QMux send streams implement TryWriter")
	return tw
}

// TryWrite takes a small write the send buffer has room for, as Write does, and leaves to
// Write whatever would wait: a large write, a full buffer, a past deadline.
func TestTryWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamDataBidiRemote = 1000 // the peer takes 1000 bytes, then nothing
		p.handshake(tp)
		s := open(t, p.c)
		tw := tryWriter(t, s)

		ok, err := tw.TryWrite([]byte("hello"))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = tw.TryWrite(nil)
		require.NoError(t, err)
		require.True(t, ok, "an empty write waits for nothing")
		synctest.Wait()
		data, _ := p.streamData(uint64(s.StreamID()))
		require.Equal(t, "hello", string(data), "taken and sent")

		ok, err = tw.TryWrite(make([]byte, sendBufferSize+1))
		require.NoError(t, err)
		require.False(t, ok, "a write larger than the buffer waits for the writer")

		// Fill the send buffer: the peer's credit is used up after 1000 bytes.
		for {
			ok, err = tw.TryWrite(make([]byte, 16<<10))
			require.NoError(t, err)
			if !ok {
				break
			}
		}
		synctest.Wait()
		s.(bidiHandle).s.c.mu.Lock()
		buffered := len(s.(bidiHandle).s.pending)
		s.(bidiHandle).s.c.mu.Unlock()
		require.Greater(t, buffered+16<<10, sendBufferSize, "refused only when the buffer has no room")

		// A past deadline: TryWrite leaves the write to Write, which reports the timeout.
		p.send(&wire.MaxStreamDataFrame{StreamID: uint64(s.StreamID()), MaximumStreamData: 1 << 20})
		synctest.Wait()
		require.NoError(t, s.SetWriteDeadline(time.Now().Add(-time.Second)))
		ok, err = tw.TryWrite([]byte("x"))
		require.NoError(t, err)
		require.False(t, ok)
		_, err = s.Write([]byte("x"))
		require.Equal(t, &session.TimeoutError{Op: "stream write deadline"}, err)
	})
}

func TestTryWriteOnResetStreamFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s := open(t, p.c)
		s.CancelWrite(5)
		ok, err := tryWriter(t, s).TryWrite([]byte("x"))
		require.False(t, ok)
		_, werr := s.Write([]byte("x"))
		require.Error(t, err)
		require.Equal(t, werr, err, "the error Write returns")
	})
}
