// Package sendbuf gives a stream's write side send buffering: a small Write is copied into a
// bounded buffer and returns at once, and one goroutine per stream hands everything buffered
// to the stream in large writes.
//
// A transport whose Write waits until its own machinery took the data (quic-go's does, for
// anything beyond one packet) costs a goroutine hand-off per Write; a sender of many small
// messages then runs at the hand-off rate. With a buffer in front, the sender only copies,
// and the stream sees one write per batch. This is the "send buffering" of MsQuic, which the
// Rust transport ran with.
//
// Why not quic-go's SendStream.TryWriteAll (v0.64.1), which queues a write without waiting when
// flow-control credit allows: it keeps everything queued in one STREAM frame, reallocated to
// its exact new size on every call beyond a packet's worth, and the packetizer copies the
// remainder each time it takes a packet, so each small write costs a copy of all the data
// queued before it. A sender of small messages outruns the packetizer, the queue grows to the
// flow-control window, and the rate collapses. Measured side by side (256-byte framed
// messages, TryWrite then Write as the stream pool writes; 2 vCPUs, shared):
//
//	go test -run XXX -bench SendPath -benchtime 3s -count 2 ./internal/quicsession/
//
//	                           sendbuf          TryWriteAll
//	SendPath loopback          1.78-1.93 M/s    71-75 k/s
//	SendPath 25 ms each way    69-104 k/s       30 k/s
//	SendPathRTT loopback p50   33-35 µs         32 µs
//	SendPathRTT 25 ms p50      51.0 ms          51.1-51.2 ms
//
// so the buffer stays: round trips gain nothing from TryWriteAll, and streams of messages
// lose 96% of their rate on loopback and half or more through the delay.
//
// Semantics: Write returns once its data is buffered (or, for a write of CopyLimit bytes or
// more, once the stream took it, uncopied, after everything buffered before it). A failure of
// the stream after that is reported by the next Write or Close. Close sends the FIN after the
// buffered data. CancelWrite drops the buffered data. A write deadline bounds a Write's wait
// for room in the buffer, and a large Write's own write; it never cuts the buffered data
// already accepted, so messages accepted before a timed-out Write are still delivered.
package sendbuf

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/peerwire/peerwire/internal/session"
)

const (
	// Size is how many bytes a stream buffers before Write waits for room.
	Size = 256 << 10
	// CopyLimit: writes this large or larger are not copied but handed to the stream.
	CopyLimit = 64 << 10
)

// ErrWriteAfterClose is returned by Write after Close.
var ErrWriteAfterClose = errors.New("write on a stream already closed for writing")

// Stream is a SendStream with send buffering. Its flusher goroutine starts with the first
// buffered Write and ends when the stream is closed (after the FIN), cancelled or failed, or
// when ctx (the connection's context) ends.
type Stream struct {
	st  session.SendStream
	ctx context.Context

	mu       sync.Mutex
	buf      []byte // data accepted and not yet handed to the stream
	out      []byte // the batch being written (flusher's), swapped with buf
	err      error  // the stream failed: every later Write and Close returns it
	closed   bool   // Close called: FIN after buf
	canceled bool
	direct   bool // a large Write is writing to the stream itself
	writing  bool // the flusher is writing a batch
	started  bool // the flusher goroutine runs
	deadline time.Time
	wake     chan struct{} // flusher: buffered data or Close
	room     chan struct{} // Writes: data left the buffer, or the stream failed
}

var _ session.SendStream = (*Stream)(nil)

// New wraps st. ctx is the connection's context: when it ends, the flusher stops.
func New(ctx context.Context, st session.SendStream) *Stream {
	return &Stream{st: st, ctx: ctx, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// StreamID returns the stream's ID.
func (s *Stream) StreamID() int64 { return s.st.StreamID() }

// Write buffers p (or, when p is large, writes it after the buffered data) and returns.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	if err := s.writeErrLocked(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	if s.canceled {
		s.mu.Unlock()
		return s.st.Write(p) // the stream's own error for a cancelled stream
	}
	if len(p) == 0 {
		s.mu.Unlock()
		return 0, nil
	}
	large := len(p) >= CopyLimit
	for s.direct || large && s.writing || !large && len(s.buf)+len(p) > Size {
		if err := s.waitLocked(); err != nil {
			s.mu.Unlock()
			return 0, err
		}
	}
	if large {
		return s.writeDirectLocked(p)
	}
	return s.acceptLocked(p)
}

// TryWrite implements session.TryWriter: a small write with room in the buffer is taken as
// Write takes it; anything that would wait (no room, a large write, a direct write in
// progress) is left to Write.
func (s *Stream) TryWrite(p []byte) (bool, error) {
	s.mu.Lock()
	if err := s.writeErrLocked(); err != nil {
		s.mu.Unlock()
		return false, err
	}
	if s.canceled || s.direct || len(p) >= CopyLimit || len(s.buf)+len(p) > Size {
		s.mu.Unlock()
		return false, nil
	}
	if len(p) == 0 {
		s.mu.Unlock()
		return true, nil
	}
	_, err := s.acceptLocked(p)
	return err == nil, err
}

// acceptLocked buffers a small write that has room, for the flusher. Called with s.mu held;
// unlocks it.
func (s *Stream) acceptLocked(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	if !s.started {
		s.started = true
		go s.flushLoop()
	}
	s.mu.Unlock()
	signal(s.wake)
	return len(p), nil
}

// writeDirectLocked writes a large p to the stream from the caller's goroutine, under the
// Write deadline, after whatever is buffered (written by the caller too, rather than waiting
// for the flusher). Called with s.mu held and the flusher idle; unlocks it.
func (s *Stream) writeDirectLocked(p []byte) (int, error) {
	s.direct = true
	_ = s.st.SetWriteDeadline(s.deadline)
	var pre []byte
	if len(s.buf) > 0 {
		s.out, s.buf = s.buf, s.out[:0]
		pre = s.out
	}
	s.mu.Unlock()
	var n, preN int
	var err error
	if len(pre) > 0 {
		preN, err = s.st.Write(pre)
	}
	if err == nil {
		n, err = s.st.Write(p)
	}
	s.mu.Lock()
	if preN < len(pre) && err != nil {
		// Cut short (deadline): what was accepted earlier and not written yet stays first in
		// the buffer.
		rest := make([]byte, 0, len(pre)-preN+len(s.buf))
		s.buf = append(append(rest, pre[preN:]...), s.buf...)
	}
	s.direct = false
	_ = s.st.SetWriteDeadline(time.Time{})
	var te *session.TimeoutError
	if err != nil && !errors.As(err, &te) && s.err == nil {
		s.err = err // the stream failed; a timed-out write leaves it usable
	}
	s.mu.Unlock()
	signal(s.room)
	signal(s.wake) // a Close waiting for the direct write
	return n, err
}

// waitLocked waits for room or a state change, bounded by the deadline. Called and returns
// with s.mu held.
func (s *Stream) waitLocked() error {
	deadline := s.deadline
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return &session.TimeoutError{Op: "stream write deadline"}
	}
	s.mu.Unlock()
	var timer <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timer = t.C
	}
	var err error
	select {
	case <-s.room:
	case <-timer:
	case <-s.ctx.Done():
		err = context.Cause(s.ctx)
	}
	s.mu.Lock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return s.err
	}
	if d := s.deadline; !d.IsZero() && !time.Now().Before(d) {
		return &session.TimeoutError{Op: "stream write deadline"}
	}
	return s.writeErrLocked()
}

func (s *Stream) writeErrLocked() error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return ErrWriteAfterClose
	}
	return nil
}

// flushLoop hands buffered data to the stream until the stream is finished or failed.
func (s *Stream) flushLoop() {
	for {
		s.mu.Lock()
		for len(s.buf) == 0 && !s.canceled && s.err == nil && !(s.closed && !s.direct) {
			s.mu.Unlock()
			select {
			case <-s.wake:
			case <-s.ctx.Done():
				s.fail(context.Cause(s.ctx))
				return
			}
			s.mu.Lock()
		}
		if s.canceled || s.err != nil {
			s.mu.Unlock()
			return
		}
		if len(s.buf) == 0 { // closed, everything written
			s.mu.Unlock()
			if err := s.st.Close(); err != nil {
				s.fail(err)
			}
			return
		}
		// Swap buffers: Writes fill the other one while this batch goes out.
		s.out, s.buf = s.buf, s.out[:0]
		s.writing = true
		s.mu.Unlock()
		signal(s.room)
		_, err := s.st.Write(s.out)
		s.mu.Lock()
		s.writing = false
		s.mu.Unlock()
		signal(s.room)
		if err != nil {
			s.fail(err)
			return
		}
	}
}

// fail records the stream's failure, drops what is buffered and wakes waiting Writes.
func (s *Stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil && !s.canceled {
		s.err = err
	}
	s.buf = nil
	s.mu.Unlock()
	signal(s.room)
}

// Close sends the FIN after the buffered data (asynchronously when data is buffered).
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if s.closed || s.canceled {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if !s.started && !s.direct {
		s.mu.Unlock()
		return s.st.Close()
	}
	if !s.started {
		s.started = true
		go s.flushLoop() // closes after the direct write in progress
	}
	s.mu.Unlock()
	signal(s.wake)
	return nil
}

// CancelWrite drops the buffered data and resets the stream.
func (s *Stream) CancelWrite(code session.StreamErrorCode) {
	s.mu.Lock()
	s.canceled = true
	s.buf = nil
	s.mu.Unlock()
	s.st.CancelWrite(code)
	signal(s.wake)
	signal(s.room)
}

// SetWriteDeadline bounds Writes waiting for room and large Writes in progress.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	if s.direct {
		_ = s.st.SetWriteDeadline(t)
	}
	s.mu.Unlock()
	signal(s.room)
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
