package qmux

// stream_send.go: a stream's send side and its send buffer.
//
// The send buffer is the one place where outgoing data waits in peerwire's QMux transport
// (the stream pool above writes straight into it). Write copies into it and returns; the
// connection's writer (conn_send.go) takes from it into records. QMux data counts as
// delivered once written to the transport (draft-02 §4), so buffered data is as good as
// sent unless the stream or the connection fails first.
//
// Invariants:
//   - len(pending) <= sendBufferSize; a Write that finds no room waits (wWaiting) until the
//     writer takes data, its deadline passes, or the send side fails.
//   - sbuf is allocated on the first Write (sendBufferInitial bytes), doubled as needed up
//     to sendBufferSize, and released once the send side ended (FIN sent or reset).
//   - After Close (finQueued) or a reset, Write fails; the FIN goes out after the pending data.

import (
	"errors"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// The send buffer's sizes.
const (
	// sendBufferSize is the most a stream buffers: enough for the writer to pack full
	// records and several transport writes ahead, so that a sender of many small messages
	// does not wait for the writer per message.
	sendBufferSize = 256 << 10
	// sendBufferInitial is the first allocation, so that a stream carrying little costs
	// little.
	sendBufferInitial = 4 << 10
)

var errWriteAfterClose = errors.New("qmux: write on a stream already closed for writing")

// write copies p into the send buffer, waiting for room as needed. On an error it reports
// how much of p was buffered (and will be sent unless the stream fails).
func (s *stream) write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writeErrLocked(); err != nil {
		return 0, err
	}
	if !s.wDeadline.IsZero() && !time.Now().Before(s.wDeadline) {
		return 0, &session.TimeoutError{Op: "stream write deadline"}
	}
	n := 0
	for n < len(p) {
		room := sendBufferSize - len(s.pending)
		if room == 0 {
			if err := s.waitRoomLocked(); err != nil {
				return n, err
			}
			continue
		}
		m := min(room, len(p)-n)
		s.bufferLocked(p[n : n+m])
		c.queueStreamLocked(s)
		n += m
	}
	return n, nil
}

// tryWrite implements session.TryWriter: all of p goes into the send buffer if it fits now,
// else nothing (and Write is the way to wait).
func (s *stream) tryWrite(p []byte) (bool, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writeErrLocked(); err != nil {
		return false, err
	}
	if len(s.pending)+len(p) > sendBufferSize || !s.wDeadline.IsZero() && !time.Now().Before(s.wDeadline) {
		return false, nil
	}
	if len(p) > 0 {
		s.bufferLocked(p)
		c.queueStreamLocked(s)
	}
	return true, nil
}

// waitRoomLocked waits, with mu released, until the writer took data from s (or the send
// side failed, or the write deadline passed).
func (s *stream) waitRoomLocked() error {
	c := s.c
	deadline := s.wDeadline
	s.wWaiting = true
	c.mu.Unlock()
	timedOut := wait(s.wSignal, deadline)
	c.mu.Lock()
	s.wWaiting = false
	if err := s.writeErrLocked(); err != nil {
		return err
	}
	if timedOut && !s.wDeadline.IsZero() && !time.Now().Before(s.wDeadline) {
		return &session.TimeoutError{Op: "stream write deadline"}
	}
	return nil
}

// bufferLocked appends p, which fits, to the data the writer takes next.
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
		grown := make([]byte, min(max(2*cap(s.sbuf), n+len(p), sendBufferInitial), sendBufferSize))
		s.pending = grown[:copy(grown, s.pending)]
		s.sbuf = grown
	}
	s.pending = append(s.pending, p...)
}

// releaseSendLocked drops buffered data and the buffer once the send side ended.
func (s *stream) releaseSendLocked() {
	s.pending, s.sbuf = nil, nil
}

func (s *stream) writeErrLocked() error {
	if s.sendErr != nil {
		return s.sendErr
	}
	if err := s.c.closing.err; err != nil {
		return err
	}
	if s.finQueued || s.resetSent {
		return errWriteAfterClose
	}
	return nil
}

func (s *stream) closeSend() error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.finQueued || s.resetSent {
		return nil
	}
	if s.sendErr != nil {
		return s.sendErr
	}
	if err := c.closing.err; err != nil {
		return err
	}
	s.finQueued = true
	c.queueStreamLocked(s)
	return nil
}

func (s *stream) cancelWrite(code uint64) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.finSent || s.resetSent || c.closing.err != nil {
		return
	}
	s.sendErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(code)}
	c.resetLocked(s, code)
}

// resetLocked abandons the send side with RESET_STREAM at the offset sent so far; buffered
// data is dropped.
func (c *conn) resetLocked(s *stream, code uint64) {
	s.resetSent = true
	s.releaseSendLocked()
	c.send.ctrl = append(c.send.ctrl, &wire.ResetStreamFrame{StreamID: s.id, ErrorCode: code, FinalSize: s.sendOff})
	c.signalWriter()
	signal(s.wSignal)
	c.streamMaybeDoneLocked(s)
}

func (s *stream) setWriteDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.wDeadline = t
	s.c.mu.Unlock()
	signal(s.wSignal)
	return nil
}
