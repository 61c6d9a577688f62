package qmux

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// readN reads exactly n bytes from r.
func readN(t testing.TB, r io.Reader, n int) {
	t.Helper()
	_, err := io.ReadFull(r, make([]byte, n))
	require.NoError(t, err)
}

func TestMaxStreamDataSentAsApplicationReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxStreamReceiveWindow = 64 << 10 // the window starts at, and stays, 64 KiB
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		id := p.id(0, dirBidi)
		p.sendStream(id, 0, make([]byte, 64<<10), false)
		s := accept(t, p.c)
		synctest.Wait()
		readN(t, s, 32<<10-1)
		synctest.Wait()
		require.Empty(t, sent[*wire.MaxStreamDataFrame](p), "no update before half the window is read")
		readN(t, s, 1)
		msd := expectFrame[*wire.MaxStreamDataFrame](p, nil)
		require.Equal(t, &wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: 32<<10 + 64<<10}, msd)
		// The new credit can be used.
		p.sendStream(id, 64<<10, make([]byte, 32<<10), false)
		readN(t, s, 64<<10)
	})
}

func TestMaxDataSentAsApplicationReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxConnectionReceiveWindow = 128 << 10
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		p.sendStream(p.id(0, dirBidi), 0, make([]byte, 64<<10), false)
		p.sendStream(p.id(1, dirBidi), 0, make([]byte, 64<<10), false)
		s := accept(t, p.c)
		readN(t, s, 64<<10-1)
		synctest.Wait()
		require.Empty(t, sent[*wire.MaxDataFrame](p), "no update before half the window is read")
		readN(t, accept(t, p.c), 1)
		md := expectFrame[*wire.MaxDataFrame](p, nil)
		require.Equal(t, uint64(64<<10+128<<10), md.MaximumData)
	})
}

// windowUpdates keeps a stream's window full and reads it 16 KiB at a time, pausing before
// each round of reads; it returns the window each of the first three MAX_STREAM_DATA grants
// (the new limit minus the bytes read).
func windowUpdates(t *testing.T, pause time.Duration) []uint64 {
	cfg := testConfig()
	cfg.MaxStreamReceiveWindow = 4 * initialStreamWindow // room to double twice
	p := newPeer(t, cfg, false)
	p.handshake(peerParams())
	id := p.id(0, dirBidi)
	var s session.Stream
	var sentOff, readOff uint64
	limit := uint64(initialStreamWindow)
	var windows []uint64
	for len(windows) < 3 {
		p.sendStream(id, sentOff, make([]byte, limit-sentOff), false)
		sentOff = limit
		if s == nil {
			s = accept(t, p.c)
		}
		time.Sleep(pause)
		updates := len(sent[*wire.MaxStreamDataFrame](p))
		for len(sent[*wire.MaxStreamDataFrame](p)) == updates {
			readN(t, s, 16<<10)
			readOff += 16 << 10
			synctest.Wait()
		}
		msds := sent[*wire.MaxStreamDataFrame](p)
		limit = msds[len(msds)-1].MaximumStreamData
		windows = append(windows, limit-readOff)
	}
	return windows
}

func TestReceiveWindowGrowsWhenReadsAreFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Updates within 4 RTTs of each other double the window, up to the configured cap.
		require.Equal(t, []uint64{initialStreamWindow, 2 * initialStreamWindow, 4 * initialStreamWindow}, windowUpdates(t, 0))
	})
}

func TestReceiveWindowKeptWhenReadsAreSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		require.Equal(t, []uint64{initialStreamWindow, initialStreamWindow, initialStreamWindow}, windowUpdates(t, time.Second))
	})
}

func TestWriteRespectsPeerStreamLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamDataBidiRemote = 1000
		p.handshake(tp)
		s := open(t, p.c)
		id := uint64(s.StreamID())
		data := pattern(sendBufferSize+2000, 9) // more than the send buffer: Write waits for the credit
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(data)
			done <- err
		}()
		synctest.Wait()
		got, _ := p.streamData(id)
		require.Equal(t, data[:1000], got)
		require.Equal(t, []*wire.StreamDataBlockedFrame{{StreamID: id, MaximumStreamData: 1000}}, sent[*wire.StreamDataBlockedFrame](p))
		require.Empty(t, sent[*wire.DataBlockedFrame](p))
		select {
		case err := <-done:
			t.Fatalf("Write returned (%v) while blocked", err)
		default:
		}

		p.send(&wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: 2000})
		synctest.Wait()
		got, _ = p.streamData(id)
		require.Equal(t, data[:2000], got)
		require.Len(t, sent[*wire.StreamDataBlockedFrame](p), 2, "blocked again at the new limit")

		p.send(&wire.MaxStreamDataFrame{StreamID: id, MaximumStreamData: uint64(len(data))})
		require.NoError(t, <-done)
		synctest.Wait()
		got, _ = p.streamData(id)
		require.Equal(t, data, got)
	})
}

func TestWriteRespectsPeerConnectionLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxData = 1000
		p.handshake(tp)
		a, b := open(t, p.c), open(t, p.c)
		done := make(chan error, 2)
		for _, s := range []session.Stream{a, b} {
			go func() {
				_, err := s.Write(make([]byte, 1500))
				done <- err
			}()
		}
		synctest.Wait()
		da, _ := p.streamData(uint64(a.StreamID()))
		db, _ := p.streamData(uint64(b.StreamID()))
		require.Equal(t, 1000, len(da)+len(db), "both streams share the connection's 1000 bytes")
		require.Equal(t, []*wire.DataBlockedFrame{{MaximumData: 1000}}, sent[*wire.DataBlockedFrame](p))
		require.Empty(t, sent[*wire.StreamDataBlockedFrame](p))

		p.send(&wire.MaxDataFrame{MaximumData: 3000})
		require.NoError(t, <-done)
		require.NoError(t, <-done)
		synctest.Wait()
		da, _ = p.streamData(uint64(a.StreamID()))
		db, _ = p.streamData(uint64(b.StreamID()))
		require.Equal(t, []int{1500, 1500}, []int{len(da), len(db)})
	})
}

func TestMaxStreamsSentAsPeerStreamsFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxIncomingStreams = 1
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		for i := range uint64(3) {
			p.send(&wire.StreamFrame{StreamID: p.id(i, dirBidi), Data: []byte("q"), Fin: true})
			s := accept(t, p.c)
			got, err := readAll(t, s)
			require.NoError(t, err)
			require.Equal(t, "q", string(got))
			synctest.Wait()
			require.Empty(t, sent[*wire.MaxStreamsFrame](p)[i:], "credit while our side is open")
			require.NoError(t, s.Close())
			ms := expectFrame[*wire.MaxStreamsFrame](p, nil)
			require.Equal(t, &wire.MaxStreamsFrame{Bidi: true, MaximumStreams: i + 2}, ms)
		}
	})
}

func TestMaxStreamsUniSentAsPeerStreamsFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxIncomingUniStreams = 1
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		p.send(&wire.StreamFrame{StreamID: p.id(0, dirUni), Data: []byte("q"), Fin: true})
		_, err := readAll(t, acceptUni(t, p.c))
		require.NoError(t, err)
		ms := expectFrame[*wire.MaxStreamsFrame](p, nil)
		require.Equal(t, &wire.MaxStreamsFrame{MaximumStreams: 2}, ms)
	})
}

func TestMaxStreamsSentForResetStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxIncomingUniStreams = 1
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		p.send(&wire.ResetStreamFrame{StreamID: p.id(0, dirUni), ErrorCode: 1, FinalSize: 10})
		_, err := readAll(t, acceptUni(t, p.c))
		var re *session.StreamResetError
		require.True(t, errors.As(err, &re))
		ms := expectFrame[*wire.MaxStreamsFrame](p, nil)
		require.Equal(t, uint64(2), ms.MaximumStreams)
	})
}

func TestOpenStreamWaitsForMaxStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamsBidi = 1
		p.handshake(tp)
		open(t, p.c)
		opened := make(chan session.Stream, 1)
		go func() {
			s, err := p.c.OpenStream(context.Background())
			if err == nil {
				opened <- s
			}
			close(opened)
		}()
		synctest.Wait()
		require.Empty(t, opened, "opened beyond the peer's limit")
		require.Equal(t, []*wire.StreamsBlockedFrame{{Bidi: true, MaximumStreams: 1}}, sent[*wire.StreamsBlockedFrame](p))

		p.send(&wire.MaxStreamsFrame{Bidi: true, MaximumStreams: 2})
		s := <-opened
		require.NotNil(t, s)
		require.Equal(t, int64(p.ourID(1, dirBidi)), s.StreamID())
	})
}

func TestOnStreamCapacityFiresWhenPeerRaisesLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamsBidi, tp.InitialMaxStreamsUni = 1, 1
		p.handshake(tp)
		synctest.Wait() // the peer's parameters (the first raise) are processed
		got := make(chan session.Capacity, 10)
		unregister := p.c.OnStreamCapacity(func(c session.Capacity) { got <- c })
		open(t, p.c)
		require.Equal(t, session.Capacity{Bidi: 0, Uni: 1}, p.c.StreamCapacity())
		p.send(&wire.MaxStreamsFrame{Bidi: true, MaximumStreams: 4})
		require.Equal(t, session.Capacity{Bidi: 3, Uni: 1}, <-got)
		p.send(&wire.MaxStreamsFrame{Bidi: true, MaximumStreams: 3}) // lower: ignored
		synctest.Wait()
		require.Empty(t, got)
		unregister()
		p.send(&wire.MaxStreamsFrame{MaximumStreams: 5})
		synctest.Wait()
		require.Empty(t, got, "called after unregistering")
		require.Equal(t, session.Capacity{Bidi: 3, Uni: 5}, p.c.StreamCapacity())
	})
}

func TestOpenStreamTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamsBidi = 0
		p.handshake(tp)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := p.c.OpenStream(ctx)
		require.Equal(t, &session.TimeoutError{Op: "open stream"}, err)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestCancelReadReturnsConnectionCredit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxConnectionReceiveWindow = 64 << 10
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		id := p.id(0, dirBidi)
		p.sendStream(id, 0, make([]byte, 40<<10), false)
		s := accept(t, p.c)
		synctest.Wait() // all 40 KiB buffered
		s.CancelRead(5)
		synctest.Wait()
		// The discarded bytes count as read: the connection window reopens.
		require.Equal(t, []*wire.MaxDataFrame{{MaximumData: 40<<10 + 64<<10}}, sent[*wire.MaxDataFrame](p))
		require.Equal(t, []*wire.StopSendingFrame{{StreamID: id, ErrorCode: 5}}, sent[*wire.StopSendingFrame](p))
	})
}

func TestMaxStreamsSentWhenLastByteIsRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxIncomingUniStreams = 1
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		p.send(&wire.StreamFrame{StreamID: p.id(0, dirUni), Data: []byte("abc"), Fin: true})
		// Reading exactly the stream's bytes finishes it, without a further Read for EOF.
		readN(t, acceptUni(t, p.c), 3)
		ms := expectFrame[*wire.MaxStreamsFrame](p, nil)
		require.Equal(t, &wire.MaxStreamsFrame{MaximumStreams: 2}, ms)
	})
}
