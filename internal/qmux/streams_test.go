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

func TestStreamDataInOrderAcrossRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		data := pattern(200_000, 3)
		id := p.id(0, dirBidi)
		// Records of varying sizes; some frames without a Length run to the end of their record.
		var off uint64
		for i := 0; off < uint64(len(data)); i++ {
			n := min(uint64(1+i*97%16000), uint64(len(data))-off)
			p.send(&wire.StreamFrame{StreamID: id, Offset: off, Data: data[off : off+n], HasLength: i%2 == 0})
			off += n
		}
		p.send(&wire.StreamFrame{StreamID: id, Offset: off, Fin: true})
		got, err := readAll(t, accept(t, p.c))
		require.NoError(t, err)
		require.Equal(t, data, got)
	})
}

func TestStreamFinGivesEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.send(&wire.StreamFrame{StreamID: p.id(0, dirUni), Data: []byte("hi"), Fin: true})
		s := acceptUni(t, p.c)
		buf := make([]byte, 10)
		n, err := s.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "hi", string(buf[:n]))
		n, err = s.Read(buf)
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)
		_, err = s.Read(buf)
		require.ErrorIs(t, err, io.EOF, "EOF again")
	})
}

func TestResetStreamFailsRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirBidi)
		p.send(&wire.StreamFrame{StreamID: id, Data: []byte("partial"), HasLength: true},
			&wire.ResetStreamFrame{StreamID: id, ErrorCode: 0x99, FinalSize: 100})
		_, err := readAll(t, accept(t, p.c))
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 0x99, Remote: true}, err)
	})
}

func TestCancelReadSendsStopSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirBidi)
		p.send(&wire.StreamFrame{StreamID: id, Data: []byte("unwanted"), HasLength: true})
		s := accept(t, p.c)
		s.CancelRead(0x21)
		ss := expectFrame[*wire.StopSendingFrame](p, nil)
		require.Equal(t, &wire.StopSendingFrame{StreamID: id, ErrorCode: 0x21}, ss)
		_, err := s.Read(make([]byte, 1))
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 0x21}, err)
	})
}

func TestStopSendingAnsweredWithResetStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamDataBidiRemote = 1000
		p.handshake(tp)
		s := open(t, p.c)
		id := uint64(s.StreamID())
		done := make(chan error, 1)
		var n int
		go func() {
			var err error
			n, err = s.Write(make([]byte, sendBufferSize+2000)) // more than the buffer: blocks
			done <- err
		}()
		synctest.Wait()
		p.send(&wire.StopSendingFrame{StreamID: id, ErrorCode: 0x33})
		rs := expectFrame[*wire.ResetStreamFrame](p, nil)
		require.Equal(t, &wire.ResetStreamFrame{StreamID: id, ErrorCode: 0x33, FinalSize: 1000}, rs)
		err := <-done
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 0x33, Remote: true}, err)
		require.Equal(t, sendBufferSize+1000, n, "Write reports the bytes it took: 1000 sent, a full buffer dropped by the reset")
		_, err = s.Write([]byte("more"))
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 0x33, Remote: true}, err)
	})
}

func TestCancelWriteSendsResetStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s := open(t, p.c)
		id := uint64(s.StreamID())
		_, err := s.Write([]byte("hello"))
		require.NoError(t, err)
		synctest.Wait() // the writer sent it
		s.CancelWrite(0x44)
		rs := expectFrame[*wire.ResetStreamFrame](p, nil)
		require.Equal(t, &wire.ResetStreamFrame{StreamID: id, ErrorCode: 0x44, FinalSize: 5}, rs)
		_, err = s.Write([]byte("more"))
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 0x44}, err)
	})
}

func TestCancelWriteUnblocksWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamDataBidiRemote = 1000
		p.handshake(tp)
		s := open(t, p.c)
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := s.Write(make([]byte, sendBufferSize+2000))
			done <- result{n, err}
		}()
		synctest.Wait()
		s.CancelWrite(1)
		r := <-done
		require.Equal(t, sendBufferSize+1000, r.n, "1000 bytes sent, a full buffer dropped")
		require.Equal(t, &session.StreamResetError{StreamID: s.StreamID(), Code: 1}, r.err)
		rs := expectFrame[*wire.ResetStreamFrame](p, nil)
		require.Equal(t, uint64(1000), rs.FinalSize)
	})
}

func TestCloseSendsFin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, err := p.c.OpenUniStream(context.Background())
		require.NoError(t, err)
		_, err = s.Write([]byte("abc"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		synctest.Wait()
		data, fin := p.streamData(uint64(s.StreamID()))
		require.Equal(t, "abc", string(data))
		require.True(t, fin)
		_, err = s.Write([]byte("x"))
		require.ErrorIs(t, err, errWriteAfterClose)
	})
}

func TestStreamIDsFollowRoles(t *testing.T) {
	for _, client := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			p := newPeer(t, testConfig(), client)
			p.handshake(peerParams())
			first, second := open(t, p.c), open(t, p.c)
			uni, err := p.c.OpenUniStream(context.Background())
			require.NoError(t, err)
			base := int64(1)
			if client {
				base = 0
			}
			require.Equal(t, []int64{base, base + 4, base + 2}, []int64{first.StreamID(), second.StreamID(), uni.StreamID()})
		})
	}
}

func TestReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi)})
		s := accept(t, p.c)
		start := time.Now()
		require.NoError(t, s.SetReadDeadline(start.Add(time.Second)))
		_, err := s.Read(make([]byte, 1))
		var te *session.TimeoutError
		require.True(t, errors.As(err, &te), "error %v", err)
		require.Equal(t, time.Second, time.Since(start))
	})
}

func TestPingRequestAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.send(&wire.PingFrame{Sequence: 7})
		resp := expectFrame[*wire.PingFrame](p, nil)
		require.Equal(t, &wire.PingFrame{Response: true, Sequence: 7}, resp)
		p.send(&wire.PingFrame{Sequence: 8})
		resp = expectFrame[*wire.PingFrame](p, nil)
		require.Equal(t, &wire.PingFrame{Response: true, Sequence: 8}, resp)
	})
}

func TestPingRequestsAnsweredWithLargest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.send(&wire.PingFrame{Sequence: 1}, &wire.PingFrame{Sequence: 2}, &wire.PingFrame{Sequence: 3})
		synctest.Wait()
		// One response may answer several requests: the last one carries the largest.
		pings := sent[*wire.PingFrame](p)
		require.NotEmpty(t, pings)
		for _, f := range pings {
			require.True(t, f.Response)
		}
		require.Equal(t, uint64(3), pings[len(pings)-1].Sequence)
	})
}

func TestWriterRecordsWithinLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		big := pattern(1<<20, 5)
		s := open(t, p.c)
		errs := make(chan error, 2)
		go func() {
			_, err := s.Write(big)
			errs <- errors.Join(err, s.Close())
		}()
		go func() {
			// Many small writes on another stream, interleaved with the big one.
			u, err := p.c.OpenUniStream(context.Background())
			for i := 0; err == nil && i < 500; i++ {
				_, err = u.Write([]byte("tiny"))
			}
			errs <- err
		}()
		for i := range 10 { // control frames in between
			p.send(&wire.PingFrame{Sequence: uint64(i)})
		}
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		synctest.Wait()
		got, fin := p.streamData(uint64(s.StreamID()))
		require.True(t, fin)
		require.Equal(t, big, got)
		recs := p.records()
		require.Greater(t, len(recs), 64)
		for i, r := range recs {
			require.Positive(t, r.size, "record %d", i)
			require.LessOrEqual(t, r.size, wire.DefaultMaxRecordSize, "record %d", i)
		}
	})
}

func TestReaderKeepsReadingWhileAStreamIsNotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxStreamReceiveWindow = 64 << 10
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		stalled := pattern(64<<10, 1)
		// Fill stream 0's whole window; the application never reads it.
		p.sendStream(p.id(0, dirBidi), 0, stalled, false)
		a := accept(t, p.c)
		// net.Pipe has no buffer: these writes complete only because the conn keeps reading.
		p.sendStream(p.id(1, dirBidi), 0, []byte("still flowing"), true)
		got, err := readAll(t, accept(t, p.c))
		require.NoError(t, err)
		require.Equal(t, "still flowing", string(got))
		// The stalled stream's data is intact.
		buf := make([]byte, len(stalled))
		_, err = io.ReadFull(a, buf)
		require.NoError(t, err)
		require.Equal(t, stalled, buf)
	})
}

func TestWriteDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamDataBidiRemote = 1000
		p.handshake(tp)
		s := open(t, p.c)
		start := time.Now()
		require.NoError(t, s.SetWriteDeadline(start.Add(time.Second)))
		n, err := s.Write(make([]byte, sendBufferSize+2000))
		require.Equal(t, sendBufferSize+1000, n, "1000 bytes sent and a full buffer")
		require.Equal(t, &session.TimeoutError{Op: "stream write deadline"}, err)
		require.Equal(t, time.Second, time.Since(start))
		// The stream stays usable: more credit, no deadline, the write goes through.
		require.NoError(t, s.SetWriteDeadline(time.Time{}))
		p.send(&wire.MaxStreamDataFrame{StreamID: uint64(s.StreamID()), MaximumStreamData: 2000})
		n, err = s.Write(make([]byte, 1000)) // room once the writer took 1000 more
		require.NoError(t, err)
		require.Equal(t, 1000, n)
	})
}

func TestNoStreamFramesBeforePeerParameters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		opened := make(chan session.Stream, 1)
		go func() {
			s, err := p.c.OpenStream(context.Background())
			if err == nil {
				_, err = s.Write([]byte("early"))
			}
			if err == nil {
				opened <- s
			}
			close(opened)
		}()
		synctest.Wait()
		require.Empty(t, opened, "opened a stream before knowing the peer's limits")
		require.Len(t, p.records(), 1)
		_, ok := p.nextFrame().(*wire.TransportParametersFrame)
		require.True(t, ok)
		p.sendParams(peerParams())
		s := <-opened
		require.NotNil(t, s)
		synctest.Wait()
		data, _ := p.streamData(uint64(s.StreamID()))
		require.Equal(t, "early", string(data))
	})
}

func TestCloseFailsBlockedOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		tp := peerParams()
		tp.InitialMaxStreamsBidi = 1
		tp.InitialMaxStreamDataBidiRemote = 10
		p.handshake(tp)
		s := open(t, p.c)
		ops := map[string]func() error{
			"Write": func() error { _, err := s.Write(make([]byte, sendBufferSize+100)); return err },
			"Read":  func() error { _, err := s.Read(make([]byte, 1)); return err },
			"OpenStream": func() error {
				_, err := p.c.OpenStream(context.Background())
				return err
			},
			"AcceptStream": func() error {
				_, err := p.c.AcceptStream(context.Background())
				return err
			},
			"AcceptUniStream": func() error {
				_, err := p.c.AcceptUniStream(context.Background())
				return err
			},
		}
		errs := make(map[string]chan error)
		for name, op := range ops {
			ch := make(chan error, 1)
			errs[name] = ch
			go func() { ch <- op() }()
		}
		synctest.Wait()
		p.send(&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: 7})
		want := &session.CloseError{Kind: session.ClosedByApplication, Code: 7, Remote: true}
		for name, ch := range errs {
			require.Equal(t, want, <-ch, name)
		}
	})
}
