package qmux

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// Stream IDs (RFC 9000 §2.1): bit 0 is the initiator (0 client, 1 server), bit 1 the
// direction (0 bidirectional, 1 unidirectional).
const (
	dirBidi = 0
	dirUni  = 1
)

func streamID(index uint64, dir int, client bool) uint64 {
	id := index<<2 | uint64(dir)<<1
	if !client {
		id |= 1
	}
	return id
}

func streamDir(id uint64) int          { return int(id>>1) & 1 }
func streamIndex(id uint64) uint64     { return id >> 2 }
func initiatedByClient(id uint64) bool { return id&1 == 0 }

// chunkPool recycles receive buffers: STREAM data is copied out of the record buffer (which
// the reader reuses) into these.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// chunkSize is the capacity of receive chunks: the most STREAM data a record of the default
// max_record_size carries, so that readDirect puts such a frame's data in one chunk.
const chunkSize = 16 << 10

// stream is one QMux stream. All fields are guarded by the connection's mutex.
type stream struct {
	c  *conn
	id uint64

	canSend, canRecv bool

	// Send side.
	sendOff     uint64 // bytes handed to the transport
	sendMax     uint64 // peer's MAX_STREAM_DATA
	pending     []byte // data the writer takes next: in sbuf, or a large Write's own slice
	sbuf        []byte // the send buffer (its full capacity); small writes are copied here
	external    bool   // pending is a Write's own slice: that Write waits until it is taken
	wWaiting    bool   // a Write waits for the writer to take data
	finQueued   bool   // Close called: FIN goes after pending data
	finSent     bool
	resetCode   uint64
	resetQueued bool // RESET_STREAM to send
	resetSent   bool
	sendErr     error // writes fail with it (reset, stopped, closed)
	queued      bool  // in the connection's send queue
	blockedAt   uint64
	wDeadline   time.Time
	wSignal     chan struct{}

	// Receive side.
	recvOff    uint64 // highest offset received (data arrives in order)
	readOff    uint64 // bytes the application read (or discarded)
	recvMax    uint64 // our MAX_STREAM_DATA
	window     uint64
	lastUpdate time.Time
	finalSize  uint64
	finKnown   bool
	chunks     []*[]byte
	head       int    // read position in chunks[0]
	rBuf       []byte // a waiting Read's buffer, filled directly by the reader
	rGot       int    // bytes of rBuf filled
	recvErr    error
	rDeadline  time.Time
	rSignal    chan struct{}
	push       session.PushHandler // takes arriving data instead of chunks and Read (Push)

	accepted bool // handed to the application (peer-initiated streams)
	done     bool // removed from the connection
}

// Send buffering: a stream keeps up to sendBuffer bytes of small writes for the writer, so
// that a sender of many small messages does not wait for the writer per message and the
// writer packs them into full records. Writes of copyLimit bytes or more are not copied.
const (
	sendBuffer    = 256 << 10
	copyLimit     = 64 << 10
	minSendBuffer = 4 << 10
)

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

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sendDone reports whether the send side reached a terminal state.
func (s *stream) sendDone() bool {
	return !s.canSend || s.finSent || s.resetSent
}

// recvDone reports whether the receive side reached a terminal state: everything read, or
// reset and the application told.
func (s *stream) recvDone() bool {
	if !s.canRecv {
		return true
	}
	if s.finKnown && s.readOff == s.finalSize {
		return true
	}
	return s.recvErr != nil && s.finKnown
}

// --- application API -------------------------------------------------------------------

type sendHandle struct{ s *stream }
type recvHandle struct{ s *stream }
type bidiHandle struct{ s *stream }

var (
	_ session.SendStream        = sendHandle{}
	_ session.TryWriter         = sendHandle{}
	_ session.TryWriter         = bidiHandle{}
	_ session.ReceiveStream     = recvHandle{}
	_ session.PushReceiveStream = recvHandle{}
	_ session.Stream            = bidiHandle{}
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
func (h recvHandle) Push(p session.PushHandler)               { h.s.setPush(p) }
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

var errWriteAfterClose = errors.New("qmux: write on a stream already closed for writing")

// write hands p to the connection's writer. Small writes are copied into the stream's send
// buffer and return at once (qmux: data is delivered once written to the transport, so data
// in the buffer is as good as sent unless the stream or connection fails first); the writer
// then packs everything buffered into as few records and transport writes as it can. When
// the writer is idle and this is all there is to send, the small write writes the record
// itself instead, without ever blocking (conn.inlineLocked). A write that does not fit
// waits for room; a large one (copyLimit or more) waits for the buffer to empty and is then
// taken from the caller's slice without a copy.
func (s *stream) write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	if err := s.writeErrLocked(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if len(p) == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	if !s.wDeadline.IsZero() && !time.Now().Before(s.wDeadline) {
		c.mu.Unlock()
		return 0, &session.TimeoutError{Op: "stream write deadline"}
	}
	total := len(p)
	// Wait for room: for a small write, room in the buffer; for a large one, an empty buffer.
	for s.external || len(p) < copyLimit && len(s.pending)+len(p) > sendBuffer || len(p) >= copyLimit && len(s.pending) > 0 {
		if err := s.waitWriterLocked(); err != nil {
			c.mu.Unlock()
			return 0, err
		}
	}
	if len(p) < copyLimit {
		s.acceptLocked(p)
		return total, nil
	}
	s.pending, s.external = p, true
	c.queueStream(s)
	for {
		// Completion first: once the writer took every byte, the data is delivered (qmux:
		// written to the transport), even if a STOP_SENDING or a close arrived before this
		// goroutine woke up. Reporting that race as a failed write made libp2p's lazy
		// multistream select fail on a stream the peer had already answered.
		if len(s.pending) == 0 {
			s.pending, s.external = nil, false
			c.mu.Unlock()
			return total, nil
		}
		if err := s.waitWriterLocked(); err != nil {
			n := total - len(s.pending)
			s.pending, s.external = nil, false
			c.mu.Unlock()
			return n, err
		}
	}
}

// tryWrite implements session.TryWriter: a small write with room in the send buffer is taken
// as write takes it; anything that would wait (no room, a large write, a past deadline, which
// write reports) is left to write.
func (s *stream) tryWrite(p []byte) (bool, error) {
	c := s.c
	c.mu.Lock()
	if err := s.writeErrLocked(); err != nil {
		c.mu.Unlock()
		return false, err
	}
	if len(p) >= copyLimit || s.external || len(s.pending)+len(p) > sendBuffer ||
		!s.wDeadline.IsZero() && !time.Now().Before(s.wDeadline) {
		c.mu.Unlock()
		return false, nil
	}
	if len(p) > 0 {
		s.acceptLocked(p)
		return true, nil
	}
	c.mu.Unlock()
	return true, nil
}

// acceptLocked takes a small write that has room: into the send buffer, written by this
// goroutine when the writer is idle (writeInlineLocked), else by the writer. Called with c.mu
// held; releases it.
func (s *stream) acceptLocked(p []byte) {
	c := s.c
	s.bufferLocked(p)
	c.enqueueLocked(s)
	if c.inlineLocked() {
		c.writeInlineLocked() // never blocks; releases c.mu
		return
	}
	c.signalWriter()
	c.mu.Unlock()
}

// waitWriterLocked waits, with c.mu released, until the writer took data from s (or the
// stream failed, or the write deadline passed). Called and returns with c.mu held.
func (s *stream) waitWriterLocked() error {
	if err := s.writeErrLocked(); err != nil {
		return err
	}
	c := s.c
	deadline := s.wDeadline
	s.wWaiting = true
	c.waitingForReadLocked() // the writer may be waiting for the peer's credit
	c.mu.Unlock()
	timedOut := wait(s.wSignal, deadline)
	c.mu.Lock()
	c.doneWaitingLocked()
	s.wWaiting = false
	if timedOut && !s.wDeadline.IsZero() && !time.Now().Before(s.wDeadline) {
		return &session.TimeoutError{Op: "stream write deadline"}
	}
	return s.writeErrLocked()
}

// bufferLocked appends p to the data the writer takes next, in the stream's own buffer.
// Called with no external data pending.
func (s *stream) bufferLocked(p []byte) {
	n := len(s.pending)
	if n == 0 {
		s.pending = s.sbuf[:0]
	}
	switch {
	case cap(s.pending)-n >= len(p):
		// Room after the pending data.
	case cap(s.sbuf) >= n+len(p):
		// Room once the pending data moves to the front of the buffer.
		s.pending = s.sbuf[:copy(s.sbuf, s.pending)]
	default:
		grown := make([]byte, max(2*cap(s.sbuf), n+len(p), minSendBuffer))
		s.pending = grown[:copy(grown, s.pending)]
		s.sbuf = grown
	}
	s.pending = append(s.pending, p...)
}

// releaseSendLocked drops buffered data and the buffer once the send side ended (FIN sent,
// or reset). A Write waiting on its own slice keeps it, to report how much went out.
func (s *stream) releaseSendLocked() {
	if !s.external {
		s.pending = nil
	}
	s.sbuf = nil
}

func (s *stream) writeErrLocked() error {
	if s.sendErr != nil {
		return s.sendErr
	}
	if s.c.closeErr != nil {
		return s.c.closeErr
	}
	if s.finQueued || s.resetQueued {
		return errWriteAfterClose
	}
	return nil
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

func (s *stream) closeSend() error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.finQueued || s.resetQueued {
		return nil
	}
	if s.sendErr != nil {
		return s.sendErr
	}
	if c.closeErr != nil {
		return c.closeErr
	}
	s.finQueued = true
	c.queueStream(s)
	return nil
}

func (s *stream) cancelWrite(code uint64) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.finSent || s.resetQueued || c.closeErr != nil {
		return
	}
	s.sendErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(code)}
	c.resetLocked(s, code)
}

func (s *stream) setWriteDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.wDeadline = t
	s.c.mu.Unlock()
	signal(s.wSignal)
	return nil
}

func (s *stream) read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	for {
		if len(s.chunks) > 0 {
			n := 0
			for n < len(p) && len(s.chunks) > 0 {
				b := *s.chunks[0]
				m := copy(p[n:], b[s.head:])
				n += m
				s.head += m
				if s.head == len(b) {
					*s.chunks[0] = b[:0]
					chunkPool.Put(s.chunks[0])
					s.chunks[0] = nil
					s.chunks = s.chunks[1:]
					s.head = 0
				}
			}
			s.readOff += uint64(n)
			c.consumed(s, uint64(n))
			// Reading the last byte finishes the receive side (and may free a stream for
			// the peer, MAX_STREAMS) without waiting for a Read that returns io.EOF.
			c.streamMaybeDone(s)
			c.mu.Unlock()
			return n, nil
		}
		if s.recvErr != nil {
			err := s.recvErr
			c.mu.Unlock()
			return 0, err
		}
		if s.finKnown && s.readOff == s.finalSize {
			c.streamMaybeDone(s)
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.closeErr != nil {
			err := c.closeErr
			c.mu.Unlock()
			return 0, err
		}
		deadline := s.rDeadline
		// While this Read waits, the connection's reader copies arriving data straight into
		// p (one copy instead of two through the chunks).
		s.rBuf, s.rGot = p, 0
		c.waitingForReadLocked()
		c.mu.Unlock()
		timedOut := wait(s.rSignal, deadline)
		c.mu.Lock()
		c.doneWaitingLocked()
		if n := s.rGot; n > 0 {
			s.rBuf, s.rGot = nil, 0
			s.readOff += uint64(n)
			c.consumed(s, uint64(n))
			c.streamMaybeDone(s)
			c.mu.Unlock()
			return n, nil
		}
		s.rBuf = nil
		if timedOut && len(s.chunks) == 0 && !s.rDeadline.IsZero() && !time.Now().Before(s.rDeadline) {
			c.mu.Unlock()
			return 0, &session.TimeoutError{Op: "stream read deadline"}
		}
	}
}

func (s *stream) cancelRead(code uint64) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.recvErr != nil || (s.finKnown && s.readOff == s.finalSize) || c.closeErr != nil {
		return
	}
	s.recvErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(code)}
	s.dropChunks()
	s.endPushLocked(s.recvErr)
	if !s.finKnown {
		// Ask the peer to stop; it answers with RESET_STREAM, which settles the final size.
		c.ctrl = append(c.ctrl, &wire.StopSendingFrame{StreamID: s.id, ErrorCode: code})
		c.signalWriter()
	}
	signal(s.rSignal)
	c.streamMaybeDone(s)
}

// dropChunks discards buffered data, returning its flow-control credit to the connection.
func (s *stream) dropChunks() {
	var n uint64
	for i, ch := range s.chunks {
		b := *ch
		if i == 0 {
			n += uint64(len(b) - s.head)
		} else {
			n += uint64(len(b))
		}
		*ch = b[:0]
		chunkPool.Put(ch)
	}
	s.chunks, s.head = nil, 0
	s.readOff += n
	s.c.consumedConn(n)
}

func (s *stream) setReadDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.rDeadline = t
	s.c.mu.Unlock()
	signal(s.rSignal)
	return nil
}

// setPush implements PushReceiveStream.Push: data buffered so far goes to h at once (data
// that arrived before a close included, as Read would return it), then handleStreamLocked
// passes h each STREAM frame's data.
func (s *stream) setPush(h session.PushHandler) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.recvErr != nil {
		h.PushEnded(s.recvErr)
		return
	}
	for len(s.chunks) > 0 {
		b := (*s.chunks[0])[s.head:]
		fin := len(s.chunks) == 1 && s.finKnown
		taken, more := h.PushData(b, fin)
		s.readOff += uint64(taken)
		c.consumed(s, uint64(taken))
		if taken < len(b) {
			s.head += taken
			return
		}
		*s.chunks[0] = (*s.chunks[0])[:0]
		chunkPool.Put(s.chunks[0])
		s.chunks[0] = nil
		s.chunks, s.head = s.chunks[1:], 0
		if fin || !more {
			c.streamMaybeDone(s)
			return
		}
	}
	s.chunks = nil
	switch {
	case s.finKnown:
		// Everything up to the FIN was read or pushed: only the FIN is left to pass on.
		h.PushData(nil, true)
		c.streamMaybeDone(s)
	case c.closeErr != nil:
		h.PushEnded(c.closeErr)
	default:
		s.push = h
	}
}

// pushLocked passes a STREAM frame's data to the stream's push handler. What the handler
// does not take stays for Read (in owned, the frame's receive chunk, when there is one); the
// stream stops pushing when the handler wants no more or the FIN went with the data.
func (c *conn) pushLocked(s *stream, data []byte, owned **[]byte) {
	fin := s.finKnown && s.recvOff == s.finalSize
	taken, more := s.push.PushData(data, fin)
	s.readOff += uint64(taken)
	c.consumed(s, uint64(taken))
	if taken == len(data) {
		if !more || fin {
			s.push = nil
		}
		return
	}
	s.push = nil
	if *owned != nil {
		s.head = taken
		s.chunks = append(s.chunks, *owned)
		*owned = nil
		return
	}
	s.appendData(data[taken:])
}

// endPushLocked tells the push handler, if any, that the receive side ended with err.
func (s *stream) endPushLocked(err error) {
	if h := s.push; h != nil {
		s.push = nil
		h.PushEnded(err)
	}
}
