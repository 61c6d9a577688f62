package qmux

import (
	"io"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// recorder is a PushHandler that keeps what it is given. It takes at most limit bytes in
// all (no limit when negative) and stops wanting more after stopAfter calls (never when 0).
type recorder struct {
	mu        sync.Mutex
	data      []byte
	fin       bool
	calls     int
	ended     error
	endedN    int
	limit     int
	stopAfter int
}

func newRecorder() *recorder { return &recorder{limit: -1} }

func (r *recorder) PushData(data []byte, fin bool) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	n := len(data)
	if r.limit >= 0 {
		n = min(n, r.limit-len(r.data))
	}
	r.data = append(r.data, data[:n]...)
	if n == len(data) && fin {
		r.fin = true
	}
	return n, r.stopAfter == 0 || r.calls < r.stopAfter
}

func (r *recorder) PushEnded(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = err
	r.endedN++
}

func (r *recorder) snapshot() (data []byte, fin bool, endedN int, ended error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data...), r.fin, r.endedN, r.ended
}

// pushUni accepts the peer's next unidirectional stream and installs h.
func pushUni(t *testing.T, c *conn, h session.PushHandler) session.ReceiveStream {
	s := acceptUni(t, c)
	ps, ok := s.(session.PushReceiveStream)
	require.True(t, ok, "QMux receive streams push")
	ps.Push(h)
	return s
}

func TestPushGivesBufferedThenArrivingDataAndFin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		data := pattern(100_000, 5)
		p.sendStream(id, 0, data[:30_000], false) // buffered before Push
		synctest.Wait()
		r := newRecorder()
		pushUni(t, p.c, r)
		got, fin, _, _ := r.snapshot()
		require.Equal(t, data[:30_000], got, "buffered data is pushed at once")
		require.False(t, fin)

		p.sendStream(id, 30_000, data[30_000:], true)
		synctest.Wait()
		got, fin, endedN, ended := r.snapshot()
		require.Equal(t, data, got)
		require.True(t, fin)
		require.Zero(t, endedN, "a FIN is not an end reported by PushEnded")
		require.NoError(t, ended)

		// The stream is finished: its slot is given back to the peer.
		ms := expectFrame[*wire.MaxStreamsFrame](p, nil)
		require.Equal(t, &wire.MaxStreamsFrame{Bidi: false, MaximumStreams: 11}, ms)
	})
}

func TestPushOfStreamAlreadyFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.send(&wire.StreamFrame{StreamID: id, Data: []byte("hi"), Fin: true})
		p.send(&wire.StreamFrame{StreamID: p.id(1, dirUni), Fin: true}) // empty, FIN only
		synctest.Wait()
		for _, want := range []string{"hi", ""} {
			r := newRecorder()
			pushUni(t, p.c, r)
			got, fin, endedN, _ := r.snapshot()
			require.Equal(t, want, string(got))
			require.True(t, fin)
			require.Zero(t, endedN)
		}
	})
}

func TestPushReturnsFlowControlCredit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxStreamReceiveWindow = 64 << 10
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.sendStream(id, 0, make([]byte, 16<<10), false)
		r := newRecorder()
		pushUni(t, p.c, r)
		// Pushed data counts as read: a grant comes once half the window went through.
		p.sendStream(id, 16<<10, make([]byte, 16<<10), false)
		msd := expectFrame[*wire.MaxStreamDataFrame](p, nil)
		require.Equal(t, uint64(32<<10+64<<10), msd.MaximumStreamData)
	})
}

func TestPushHandlerTakingLessLeavesTheRestForRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		data := pattern(50_000, 7)
		p.sendStream(id, 0, data[:10_000], false)
		r := newRecorder()
		r.limit = 20_000
		s := pushUni(t, p.c, r)
		p.sendStream(id, 10_000, data[10_000:40_000], false)
		p.sendStream(id, 40_000, data[40_000:], true)
		synctest.Wait()
		got, _, endedN, _ := r.snapshot()
		require.Equal(t, data[:20_000], got)
		rest, err := readAll(t, s)
		require.NoError(t, err, "Read returns the rest, then EOF")
		require.Equal(t, data[20_000:], rest)
		require.Zero(t, endedN, "no PushEnded after the pushing ended")
	})
}

func TestPushHandlerWantingNoMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.sendStream(id, 0, []byte("first"), false)
		r := newRecorder()
		r.stopAfter = 2
		s := pushUni(t, p.c, r)
		p.sendStream(id, 5, []byte("first"), false)
		synctest.Wait()
		p.sendStream(id, 10, []byte("second"), true)
		rest, err := readAll(t, s)
		require.NoError(t, err)
		require.Equal(t, "second", string(rest))
		got, _, _, _ := r.snapshot()
		require.Equal(t, "firstfirst", string(got))

		// Reading after the pushing ended finishes the stream as usual.
		ms := expectFrame[*wire.MaxStreamsFrame](p, nil)
		require.Equal(t, uint64(11), ms.MaximumStreams)
	})
}

func TestPushEndedByReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.send(&wire.StreamFrame{StreamID: id, Data: []byte("partial"), HasLength: true})
		r := newRecorder()
		pushUni(t, p.c, r)
		p.send(&wire.ResetStreamFrame{StreamID: id, ErrorCode: 0x42, FinalSize: 100})
		synctest.Wait()
		got, fin, endedN, ended := r.snapshot()
		require.Equal(t, "partial", string(got))
		require.False(t, fin)
		require.Equal(t, 1, endedN)
		var re *session.StreamResetError
		require.ErrorAs(t, ended, &re)
		require.Equal(t, session.StreamErrorCode(0x42), re.Code)
		require.True(t, re.Remote)
	})
}

func TestPushEndedByCancelRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.sendStream(id, 0, []byte("x"), false)
		r := newRecorder()
		s := pushUni(t, p.c, r)
		s.CancelRead(7)
		_, _, endedN, ended := r.snapshot()
		require.Equal(t, 1, endedN)
		var re *session.StreamResetError
		require.ErrorAs(t, ended, &re)
		require.False(t, re.Remote)
		ss := expectFrame[*wire.StopSendingFrame](p, nil)
		require.Equal(t, uint64(7), ss.ErrorCode)
	})
}

func TestPushEndedByConnectionClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.sendStream(id, 0, []byte("be"), false)
		r := newRecorder()
		pushUni(t, p.c, r)
		p.sendStream(id, 2, []byte("fore"), false)
		p.send(&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: 3, Reason: []byte("bye")})
		synctest.Wait()
		got, _, endedN, ended := r.snapshot()
		require.Equal(t, "before", string(got))
		require.Equal(t, 1, endedN)
		var ce *session.CloseError
		require.ErrorAs(t, ended, &ce)
		require.Equal(t, uint64(3), ce.Code)
	})
}

// Data that arrived before the connection closed is pushed before the end is reported, as
// Read would return it before the close error.
func TestPushAfterCloseGivesBufferedDataFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.sendStream(p.id(0, dirUni), 0, []byte("kept"), false)
		synctest.Wait()
		s := acceptUni(t, p.c)
		p.send(&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: 3})
		synctest.Wait()
		r := newRecorder()
		s.(session.PushReceiveStream).Push(r)
		got, fin, endedN, ended := r.snapshot()
		require.Equal(t, "kept", string(got))
		require.False(t, fin)
		require.Equal(t, 1, endedN)
		require.Error(t, ended)
	})
}

// A stream the application reset before pushing reports the end at once.
func TestPushOnCancelledStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.sendStream(p.id(0, dirUni), 0, []byte("x"), false)
		s := acceptUni(t, p.c)
		s.CancelRead(1)
		r := newRecorder()
		s.(session.PushReceiveStream).Push(r)
		got, _, endedN, ended := r.snapshot()
		require.Empty(t, got)
		require.Equal(t, 1, endedN)
		require.Error(t, ended)
		_, err := s.Read(make([]byte, 1))
		require.Error(t, err)
		require.NotErrorIs(t, err, io.EOF)
	})
}
