package qmux

// stream.go: a QMux stream, and the handles the application holds.
//
// A stream has a send side (stream_send.go) and a receive side (stream_recv.go); a
// unidirectional stream has one of them. Its fields are guarded by the connection's mu.
// Each side has a signal channel (capacity 1) on which its one waiting caller sleeps with
// mu released: wSignal is signalled when the writer takes data (room in the send buffer) or
// the send side fails, rSignal when data, a FIN or a reset arrives. A closing connection
// signals both.
//
// A stream is forgotten by the connection (conn_streams.go) once both sides reached a
// terminal state: sendDone and recvDone.

import (
	"time"

	"github.com/peerwire/peerwire/internal/session"
)

// stream is one QMux stream.
type stream struct {
	c  *conn
	id uint64

	canSend, canRecv bool

	// Send side.
	sendOff   uint64 // bytes handed to the transport
	sendMax   uint64 // peer's MAX_STREAM_DATA
	pending   []byte // buffered data the writer takes next: a window of sbuf
	sbuf      []byte // the send buffer (its full capacity)
	wWaiting  bool   // a Write waits for room
	finQueued bool   // Close called: FIN goes after pending data
	finSent   bool
	resetSent bool  // RESET_STREAM queued (as good as sent: control frames are never lost)
	sendErr   error // writes fail with it (reset, stopped)
	queued    bool  // in the connection's send queue
	blockedAt uint64
	wDeadline time.Time
	wSignal   chan struct{}

	// Receive side.
	recvOff    uint64 // highest offset received (data arrives in order)
	readOff    uint64 // bytes the application read (or discarded)
	recvMax    uint64 // our MAX_STREAM_DATA
	window     uint64
	lastUpdate time.Time
	finalSize  uint64
	finKnown   bool
	chunks     []*[]byte // the receive buffer: data received and not read, in order
	head       int       // read position in chunks[0]
	recvErr    error
	rDeadline  time.Time
	rSignal    chan struct{}

	accepted bool // handed to the application (peer-initiated streams)
	done     bool // removed from the connection
}

func newStream(c *conn, id uint64, local bool) *stream {
	s := &stream{c: c, id: id, wSignal: make(chan struct{}, 1), rSignal: make(chan struct{}, 1)}
	uni := streamDir(id) == dirUni
	s.canSend = !uni || local
	s.canRecv = !uni || !local
	p := &c.peer
	switch {
	case !uni && local:
		s.sendMax, s.window = p.InitialMaxStreamDataBidiRemote, c.local.InitialMaxStreamDataBidiLocal
	case !uni:
		s.sendMax, s.window = p.InitialMaxStreamDataBidiLocal, c.local.InitialMaxStreamDataBidiRemote
	case local:
		s.sendMax = p.InitialMaxStreamDataUni
	default:
		s.window = c.local.InitialMaxStreamDataUni
	}
	s.recvMax = s.window
	return s
}

// sendDone reports whether the send side reached a terminal state.
func (s *stream) sendDone() bool {
	return !s.canSend || s.finSent || s.resetSent
}

// recvDone reports whether the receive side reached a terminal state: everything read, or
// reset and the final size known.
func (s *stream) recvDone() bool {
	if !s.canRecv {
		return true
	}
	if s.finKnown && s.readOff == s.finalSize {
		return true
	}
	return s.recvErr != nil && s.finKnown
}

// wait blocks until ch is signalled or the deadline passes; it reports a timeout.
func wait(ch chan struct{}, deadline time.Time) bool {
	if deadline.IsZero() {
		<-ch
		return false
	}
	d := time.Until(deadline)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return false
	case <-t.C:
		return true
	}
}

// The application's handles: a stream seen as send-only, receive-only or bidirectional.
type (
	sendHandle struct{ s *stream }
	recvHandle struct{ s *stream }
	bidiHandle struct{ s *stream }
)

var (
	_ session.SendStream    = sendHandle{}
	_ session.TryWriter     = sendHandle{}
	_ session.TryWriter     = bidiHandle{}
	_ session.ReceiveStream = recvHandle{}
	_ session.Stream        = bidiHandle{}
)

func (h sendHandle) StreamID() int64                          { return int64(h.s.id) }
func (h sendHandle) Write(p []byte) (int, error)              { return h.s.write(p) }
func (h sendHandle) TryWrite(p []byte) (bool, error)          { return h.s.tryWrite(p) }
func (h sendHandle) Close() error                             { return h.s.closeSend() }
func (h sendHandle) CancelWrite(code session.StreamErrorCode) { h.s.cancelWrite(uint64(code)) }
func (h sendHandle) SetWriteDeadline(t time.Time) error       { return h.s.setWriteDeadline(t) }
func (h recvHandle) StreamID() int64                          { return int64(h.s.id) }
func (h recvHandle) Read(p []byte) (int, error)               { return h.s.read(p) }
func (h recvHandle) CancelRead(code session.StreamErrorCode)  { h.s.cancelRead(uint64(code)) }
func (h recvHandle) SetReadDeadline(t time.Time) error        { return h.s.setReadDeadline(t) }
func (h bidiHandle) StreamID() int64                          { return int64(h.s.id) }
func (h bidiHandle) Write(p []byte) (int, error)              { return h.s.write(p) }
func (h bidiHandle) TryWrite(p []byte) (bool, error)          { return h.s.tryWrite(p) }
func (h bidiHandle) Close() error                             { return h.s.closeSend() }
func (h bidiHandle) CancelWrite(code session.StreamErrorCode) { h.s.cancelWrite(uint64(code)) }
func (h bidiHandle) SetWriteDeadline(t time.Time) error       { return h.s.setWriteDeadline(t) }
func (h bidiHandle) Read(p []byte) (int, error)               { return h.s.read(p) }
func (h bidiHandle) CancelRead(code session.StreamErrorCode)  { h.s.cancelRead(uint64(code)) }
func (h bidiHandle) SetReadDeadline(t time.Time) error        { return h.s.setReadDeadline(t) }
func (h bidiHandle) SetDeadline(t time.Time) error {
	_ = h.s.setReadDeadline(t)
	return h.s.setWriteDeadline(t)
}
