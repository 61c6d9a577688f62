package qmux

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/synctest"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// The reader takes a full record's STREAM data straight from the transport into a receive
// chunk (readDirect). These tests call readDirect on a record source of their own while the
// conn's reader idles, to check when it takes a record and when it leaves it to the general
// path, and what happens when the stream or the connection changes during its read.

// streamRecord is one record carrying f.
func streamRecord(f *wire.StreamFrame) []byte {
	payload := f.Append(nil)
	return append(wire.AppendRecordHeader(nil, uint64(len(payload))), payload...)
}

// openedUni has the peer open its first unidirectional stream with one byte, which the
// application reads; it returns the stream and its ID.
func openedUni(t *testing.T, p *peer) (session.ReceiveStream, uint64) {
	t.Helper()
	id := p.id(0, dirUni)
	p.send(&wire.StreamFrame{StreamID: id, Data: []byte{'>'}, HasLength: true})
	s := acceptUni(t, p.c)
	readN(t, s, 1)
	synctest.Wait()
	return s, id
}

// direct runs readDirect on the record that src delivers, as the reader would.
func direct(c *conn, rr *wire.RecordReader) (bool, error) {
	head, more, err := rr.Head()
	if err != nil || more == 0 {
		return false, err
	}
	return c.readDirect(rr, &wire.Parser{}, head, more)
}

func TestReadDirectTakesFullStreamRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, id := openedUni(t, p)
		data := pattern(12_000, 1)
		for _, hasLength := range []bool{true, false} {
			off := uint64(1)
			if !hasLength {
				off += uint64(len(data))
			}
			rr := wire.NewRecordReader(bytes.NewReader(streamRecord(&wire.StreamFrame{StreamID: id, Offset: off, Data: data, HasLength: hasLength})), 0)
			took, err := direct(p.c, rr)
			require.NoError(t, err)
			require.True(t, took)
			got := make([]byte, len(data))
			_, err = io.ReadFull(s, got)
			require.NoError(t, err)
			require.Equal(t, data, got)
		}
	})
}

func TestReadDirectLeavesOtherRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxStreamReceiveWindow = 10_000
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		_, id := openedUni(t, p)
		cancelled, cid := acceptUniWith(t, p, p.id(1, dirUni))
		cancelled.CancelRead(1)
		synctest.Wait()
		big := make([]byte, 9_000)
		frames := func(fs ...wire.Frame) []byte {
			payload := appendFrames(nil, fs...)
			return append(wire.AppendRecordHeader(nil, uint64(len(payload))), payload...)
		}
		for name, rec := range map[string][]byte{
			"little data": streamRecord(&wire.StreamFrame{StreamID: id, Offset: 1, Data: make([]byte, 5_000)}),
			"not the record's last frame": frames(&wire.StreamFrame{StreamID: id, Offset: 1, Data: big, HasLength: true},
				&wire.PaddingFrame{Count: 1}),
			"not a STREAM frame first": frames(&wire.PaddingFrame{Count: 1}, &wire.StreamFrame{StreamID: id, Offset: 1, Data: big}),
			"stream not opened":        streamRecord(&wire.StreamFrame{StreamID: p.id(5, dirUni), Data: big}),
			"offset not the next":      streamRecord(&wire.StreamFrame{StreamID: id, Offset: 2, Data: big}),
			"beyond flow control":      streamRecord(&wire.StreamFrame{StreamID: id, Offset: 1, Data: make([]byte, 10_000)}),
			"stream read cancelled":    streamRecord(&wire.StreamFrame{StreamID: cid, Offset: 1, Data: big}),
		} {
			rr := wire.NewRecordReader(bytes.NewReader(rec), 0)
			took, err := direct(p.c, rr)
			require.NoError(t, err, name)
			require.False(t, took, name)
			whole, err := rr.Next()
			require.NoError(t, err, name)
			require.Equal(t, rec[2:], whole, "%s: nothing consumed", name)
		}
	})
}

// acceptUniWith has the peer open stream id with one byte and accepts it.
func acceptUniWith(t *testing.T, p *peer, id uint64) (session.ReceiveStream, uint64) {
	t.Helper()
	p.send(&wire.StreamFrame{StreamID: id, Data: []byte{'>'}, HasLength: true})
	s := acceptUni(t, p.c)
	readN(t, s, 1)
	return s, id
}

// directInProgress starts readDirect on a record of data for id from offset 1 and returns
// once it waits for the record's rest; finish delivers the rest and returns readDirect's
// result.
func directInProgress(t *testing.T, c *conn, id uint64, data []byte) (finish func(rest error) (bool, error)) {
	t.Helper()
	rec := streamRecord(&wire.StreamFrame{StreamID: id, Offset: 1, Data: data, HasLength: true})
	pr, pw := io.Pipe()
	type result struct {
		took bool
		err  error
	}
	done := make(chan result, 1)
	go func() {
		took, err := direct(c, wire.NewRecordReader(pr, 0))
		done <- result{took, err}
	}()
	go func() { _, _ = pw.Write(rec[:4000]) }()
	synctest.Wait()
	return func(fail error) (bool, error) {
		if fail != nil {
			_ = pw.CloseWithError(fail)
		} else {
			go func() { _, _ = pw.Write(rec[4000:]) }()
		}
		r := <-done
		return r.took, r.err
	}
}

func TestReadDirectIntoWaitingRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, id := openedUni(t, p)
		data := pattern(12_000, 2)
		finish := directInProgress(t, p.c, id, data)
		// A Read waits with a buffer smaller than the frame: it gets the first bytes, the
		// stream keeps the rest of the chunk.
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, 1000)
			n, _ := s.Read(buf)
			got <- buf[:n]
		}()
		synctest.Wait()
		took, err := finish(nil)
		require.NoError(t, err)
		require.True(t, took)
		first := <-got
		require.Equal(t, data[:1000], first)
		rest := make([]byte, len(data)-1000)
		_, err = io.ReadFull(s, rest)
		require.NoError(t, err)
		require.Equal(t, data[1000:], rest)
	})
}

func TestReadDirectCancelReadWhileReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, id := openedUni(t, p)
		data := pattern(12_000, 3)
		finish := directInProgress(t, p.c, id, data)
		s.CancelRead(7)
		took, err := finish(nil)
		require.NoError(t, err)
		require.True(t, took)
		_, err = s.Read(make([]byte, 1))
		require.Equal(t, &session.StreamResetError{StreamID: int64(id), Code: 7}, err)
		p.c.mu.Lock()
		defer p.c.mu.Unlock()
		require.Equal(t, uint64(1+len(data)), p.c.readTotal, "the discarded data's credit returns to the connection")
	})
}

func TestReadDirectConnectionClosedWhileReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, id := openedUni(t, p)
		finish := directInProgress(t, p.c, id, pattern(12_000, 4))
		require.NoError(t, p.c.CloseWithError(3, "bye"))
		took, err := finish(nil)
		require.NoError(t, err)
		require.True(t, took)
		_, err = s.Read(make([]byte, 1))
		var ce *session.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, session.ClosedByApplication, ce.Kind)
	})
}

func TestReadDirectTransportFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		_, id := openedUni(t, p)
		boom := errors.New("boom")
		took, err := directInProgress(t, p.c, id, pattern(12_000, 5))(boom)
		require.True(t, took)
		require.ErrorIs(t, err, boom)
	})
}

func TestTransportEndsInsideDirectRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, id := openedUni(t, p)
		rec := streamRecord(&wire.StreamFrame{StreamID: id, Offset: 1, Data: pattern(12_000, 6), HasLength: true})
		p.write(rec[:5000])
		_ = p.nc.Close()
		_, err := readAll(t, s)
		var ce *session.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, session.ClosedByNetwork, ce.Kind)
		require.ErrorIs(t, ce.Err, io.ErrUnexpectedEOF)
	})
}

func TestDirectRecordsInOrderWithSmallReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		s, id := openedUni(t, p)
		data := pattern(300_000, 7)
		go p.sendStream(id, 1, data, true)
		var got []byte
		buf := make([]byte, 1000)
		for {
			n, err := s.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
		}
		require.Equal(t, data, got)
	})
}
