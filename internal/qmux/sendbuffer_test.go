package qmux

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// blockedStream is a stream whose peer granted `credit` bytes of stream data.
func blockedStream(t *testing.T, credit uint64) (*peer, session.Stream, uint64) {
	p := newPeer(t, testConfig(), false)
	tp := peerParams()
	tp.InitialMaxStreamDataBidiRemote = credit
	p.handshake(tp)
	s := open(t, p.c)
	return p, s, uint64(s.StreamID())
}

func TestSmallWritesAreBufferedWhileBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, s, id := blockedStream(t, 1000)
		data := pattern(3000, 3)
		for i := 0; i < len(data); i += 500 {
			n, err := s.Write(data[i : i+500])
			require.NoError(t, err, "a small write returns once buffered")
			require.Equal(t, 500, n)
		}
		synctest.Wait()
		got, fin := p.streamData(id)
		require.Equal(t, data[:1000], got, "only what the peer allowed went out")
		require.False(t, fin)
		require.Equal(t, []*wire.StreamDataBlockedFrame{{StreamID: id, MaximumStreamData: 1000}}, sent[*wire.StreamDataBlockedFrame](p))

		require.NoError(t, s.Close(), "Close queues the FIN behind the buffered data")
		p.send(&wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: 3000})
		synctest.Wait()
		got, fin = p.streamData(id)
		require.Equal(t, data, got)
		require.True(t, fin)
	})
}

func TestSendBufferBoundsWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, s, id := blockedStream(t, 0)
		chunk := make([]byte, 16<<10)
		for range sendBufferSize / len(chunk) {
			_, err := s.Write(chunk)
			require.NoError(t, err)
		}
		// The buffer is full: the next write waits for room, bounded by its deadline.
		start := time.Now()
		require.NoError(t, s.SetWriteDeadline(start.Add(time.Second)))
		n, err := s.Write(chunk)
		require.Equal(t, &session.TimeoutError{Op: "stream write deadline"}, err)
		require.Zero(t, n, "nothing of a write that timed out waiting for room is buffered")
		require.Equal(t, time.Second, time.Since(start))

		// Credit for one chunk makes room for one more write.
		require.NoError(t, s.SetWriteDeadline(time.Time{}))
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(chunk)
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Write returned (%v) with a full buffer", err)
		default:
		}
		p.send(&wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: uint64(len(chunk))})
		require.NoError(t, <-done)
	})
}

func TestCancelWriteDropsBufferedData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, s, id := blockedStream(t, 1000)
		_, err := s.Write(make([]byte, 3000))
		require.NoError(t, err)
		synctest.Wait()
		s.CancelWrite(0x9)
		rs := expectFrame[*wire.ResetStreamFrame](p, nil)
		require.Equal(t, &wire.ResetStreamFrame{StreamID: id, ErrorCode: 0x9, FinalSize: 1000}, rs,
			"the final size counts what went out; buffered data is dropped")
		p.send(&wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: 3000})
		synctest.Wait()
		got, _ := p.streamData(id)
		require.Len(t, got, 1000, "no data after RESET_STREAM")
		_, err = s.Write([]byte("x"))
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 0x9}, err)
	})
}

func TestWriteAfterDeadlineFailsEvenWithRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s, _ := blockedStream(t, 1000)
		require.NoError(t, s.SetWriteDeadline(time.Now().Add(-time.Second)))
		n, err := s.Write([]byte("late"))
		require.Zero(t, n)
		require.Equal(t, &session.TimeoutError{Op: "stream write deadline"}, err)
	})
}

func TestBufferedAndLargeWritesKeepOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, s, id := blockedStream(t, 0)
		small := pattern(100, 1)
		large := pattern(sendBufferSize+10, 2)
		_, err := s.Write(small)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(large) // more than the buffer holds: waits for room
			done <- err
		}()
		synctest.Wait()
		p.send(&wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: 1 << 20})
		require.NoError(t, <-done)
		synctest.Wait()
		got, _ := p.streamData(id)
		require.Equal(t, append(append([]byte{}, small...), large...), got)
	})
}
