package streampool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
)

// sender owns one send stream and combines concurrent Sends.
//
// Flat combining: a Send copies its framed message into the pending batch; if no write is in
// progress it becomes the flusher and writes the whole batch in one stream write, else it
// waits for the flusher to finish, after which one of the waiters writes the next batch.
// Under contention many small messages go out in one write; alone, a Send writes directly.
// There is no goroutine or allocation per message. Messages of framing.DirectWriteSize or
// more are not copied: their Send waits for its turn and writes the pending batch and its
// message itself.
type sender struct {
	p *Pool

	mu   sync.Mutex
	cond sync.Cond
	// batch is the next write: batch[0] is the stream type, sent only as a fresh stream's
	// first byte (in the same write as its first messages); framed messages follow.
	batch     []byte
	spare     []byte // the previous batch's buffer, reused
	nextID    uint64 // ID of the batch the pending one will become
	doneID    uint64 // every batch with an ID < doneID has been written (or failed)
	waiters   int    // Sends waiting in the pending batch
	abandoned int    // Sends of the batch being written that stopped waiting (ctx ended)
	flushing  bool
	failed    map[uint64]*failure // failed batches with Sends yet to collect the error
	closed    error
	stopped   bool // the pool closed: the stream is reset and no new one is opened

	// stream is used by the flusher only, but changed under mu so that close can reset it.
	stream session.SendStream
}

type failure struct {
	err     error
	waiters int
}

func newSender(p *Pool) *sender {
	s := &sender{p: p, batch: []byte{byte(StreamMessages)}}
	s.cond.L = &s.mu
	return s
}

// pending returns how many bytes of framed messages wait in the batch.
func (s *sender) pending() int { return len(s.batch) - 1 }

func (s *sender) send(ctx context.Context, msg []byte) error {
	if len(msg) >= framing.DirectWriteSize {
		return s.sendLarge(ctx, msg)
	}
	s.mu.Lock()
	for s.pending() > 0 && s.pending()+framing.HeaderSize+len(msg) > s.p.cfg.maxBatch() {
		if err := s.wait(ctx); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if s.closed != nil {
		s.mu.Unlock()
		return s.closed
	}
	var err error
	if s.batch, err = framing.AppendMessage(s.batch, msg, s.p.cfg.maxMessage()); err != nil {
		s.mu.Unlock()
		return err
	}
	id := s.nextID
	s.waiters++
	for {
		if s.doneID > id {
			err = s.collect(id)
			s.mu.Unlock()
			return err
		}
		if !s.flushing {
			// Our message is in the pending batch (id == s.nextID): write it ourselves.
			s.waiters--
			err = s.flush(ctx, nil)
			s.mu.Unlock()
			return err
		}
		if werr := s.wait(ctx); werr != nil && s.doneID <= id {
			// Our copy stays in its batch and may still be sent; the caller stops waiting.
			if s.nextID == id {
				s.waiters--
			} else {
				s.abandoned++
			}
			s.mu.Unlock()
			return werr
		}
	}
}

// sendLarge writes a big message from the caller's buffer, after the pending batch, once no
// other write is in progress.
func (s *sender) sendLarge(ctx context.Context, msg []byte) error {
	if max := s.p.cfg.maxMessage(); uint64(len(msg)) > uint64(max) {
		return &framing.TooLargeError{Size: uint64(len(msg)), Max: uint64(max)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing {
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
	if s.closed != nil {
		return s.closed
	}
	return s.flush(ctx, msg)
}

// flush writes the pending batch (and large, if any) as the flusher. Called and returns with
// s.mu held; releases it while writing. It returns the caller's own result.
func (s *sender) flush(ctx context.Context, large []byte) error {
	s.flushing = true
	id := s.nextID
	s.nextID++
	batch := s.batch
	if large != nil {
		batch = binary.BigEndian.AppendUint32(batch, uint32(len(large)))
	}
	s.batch = append(s.spare[:0], byte(StreamMessages))
	others := s.waiters
	s.waiters = 0
	s.mu.Unlock()

	wctx := ctx
	if others > 0 {
		// The batch carries other Sends' messages: the flusher's own context must not cut
		// their write. The stall timeout still bounds it.
		wctx = context.WithoutCancel(ctx)
	}
	err := s.write(wctx, batch, large)

	s.mu.Lock()
	others -= s.abandoned
	s.abandoned = 0
	if cap(batch) <= 2*s.p.cfg.maxBatch() {
		s.spare = batch[:0]
	} else {
		s.spare = nil
	}
	if err != nil && others > 0 {
		if s.failed == nil {
			s.failed = make(map[uint64]*failure)
		}
		s.failed[id] = &failure{err: err, waiters: others}
	}
	s.doneID = id + 1
	s.flushing = false
	s.cond.Broadcast()
	return err
}

// collect returns the result of batch id for a waiter. Called with s.mu held.
func (s *sender) collect(id uint64) error {
	f, ok := s.failed[id]
	if !ok {
		return nil
	}
	if f.waiters--; f.waiters <= 0 {
		delete(s.failed, id)
	}
	return f.err
}

// wait blocks on the condition until woken or ctx ends. Called with s.mu held.
func (s *sender) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
		defer stop()
	}
	s.cond.Wait()
	return ctx.Err()
}

// write puts one batch (batch[0] being the stream type), then large, on the stream, opening
// the stream first if needed. Only the flusher calls it.
func (s *sender) write(ctx context.Context, batch, large []byte) error {
	st := s.stream
	if st == nil {
		var err error
		if st, err = s.open(ctx); err != nil {
			return err
		}
	} else {
		batch = batch[1:] // the stream type went with the stream's first write
	}
	// A write that can wait is bounded by the stall timeout (a write deadline) and cut when
	// ctx ends. Both cost a timer and registering with ctx, so they are set up only before a
	// write that waits: a stream that can tell (session.TryWriter) takes what it has room for
	// at once, as most writes are.
	tw, _ := st.(session.TryWriter)
	timeout := s.p.cfg.timeout()
	var cut writeCutter
	defer cut.disarm(st)
	for _, b := range [2][]byte{batch, large} {
		for len(b) > 0 {
			n := min(len(b), writeChunk)
			if tw != nil {
				ok, err := tw.TryWrite(b[:n])
				if err != nil {
					return s.writeFailed(ctx, st, err, timeout)
				}
				if ok {
					b = b[n:]
					continue
				}
			}
			cut.arm(ctx, st)
			// Set before checking ctx: a cut that comes later is not overwritten.
			_ = st.SetWriteDeadline(time.Now().Add(timeout))
			if err := ctx.Err(); err != nil {
				return s.writeFailed(ctx, st, err, timeout)
			}
			if _, err := st.Write(b[:n]); err != nil {
				return s.writeFailed(ctx, st, err, timeout)
			}
			b = b[n:]
		}
	}
	return nil
}

// writeCutter cuts a waiting write when its ctx ends, with a past write deadline.
type writeCutter struct {
	stop func() bool
	done chan struct{} // closed once the cut was made
}

// arm registers the cut with ctx, once per write call.
func (c *writeCutter) arm(ctx context.Context, st session.SendStream) {
	if c.stop != nil || ctx.Done() == nil {
		return
	}
	done := make(chan struct{})
	c.done = done
	c.stop = context.AfterFunc(ctx, func() {
		_ = st.SetWriteDeadline(time.Unix(1, 0))
		close(done)
	})
}

// disarm unregisters the cut; if it was made, it waits for it and clears the deadline it
// left, for a stream still in use.
func (c *writeCutter) disarm(st session.SendStream) {
	if c.stop != nil && !c.stop() {
		<-c.done
		_ = st.SetWriteDeadline(time.Time{})
	}
}

// open opens the sender's stream, unless the pool closed.
func (s *sender) open(ctx context.Context) (session.SendStream, error) {
	if s.isStopped() {
		return nil, errPoolClosed
	}
	st, err := s.p.openStream(ctx)
	if err != nil {
		return nil, err
	}
	s.p.opened.Store(true)
	s.mu.Lock()
	stopped := s.stopped
	if !stopped {
		s.stream = st
	}
	s.mu.Unlock()
	if stopped {
		st.CancelWrite(CodePoolClosed)
		return nil, errPoolClosed
	}
	return st, nil
}

func (s *sender) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// writeFailed drops the stream after a failed write and returns the error for Send.
func (s *sender) writeFailed(ctx context.Context, st session.SendStream, err error, timeout time.Duration) error {
	if s.abandon(st, err) {
		return errPoolClosed
	}
	var re *session.StreamResetError
	switch {
	case errors.As(err, &re) && re.Remote && re.Code == CodeMessageTooLarge:
		return &PeerRefusedError{StreamID: re.StreamID}
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &session.TimeoutError{Op: "write", After: timeout}
	}
	return err
}

// abandon drops the stream after a failed write; the next Send opens a fresh one. A stream
// that is still alive (the write timed out or was cancelled) is finished with a FIN rather
// than reset: messages written before are still delivered, and the peer discards the message
// cut short by the FIN (its reader sees an unexpected end), so nothing partial and nothing
// already sent is lost. Only if the FIN cannot be sent is the stream reset, with
// CodeWriteFailed. A stream the peer reset or stopped, or whose connection closed, is just
// dropped. abandon reports whether the pool closed, which reset the stream already.
func (s *sender) abandon(st session.SendStream, err error) (stopped bool) {
	s.mu.Lock()
	s.stream = nil
	stopped = s.stopped
	s.mu.Unlock()
	if stopped {
		return true
	}
	var re *session.StreamResetError
	var ce *session.CloseError
	if errors.As(err, &re) || errors.As(err, &ce) {
		return false
	}
	_ = st.SetWriteDeadline(time.Time{})
	if cerr := st.Close(); cerr != nil {
		st.CancelWrite(CodeWriteFailed)
	}
	return false
}

// openStream opens a send stream within ctx and the stream timeout. Pool.Close (or the
// connection's end) stops the wait for stream credit too.
func (p *Pool) openStream(ctx context.Context) (session.SendStream, error) {
	timeout := p.cfg.timeout()
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()
	st, err := p.conn.OpenUniStream(octx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if p.ctx.Err() != nil {
			if cause := context.Cause(p.conn.Context()); cause != nil {
				return nil, cause
			}
			return nil, errPoolClosed
		}
		var te *session.TimeoutError
		if errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) {
			return nil, &session.TimeoutError{Op: "open send stream", After: timeout}
		}
		return nil, err
	}
	return st, nil
}

// close fails pending and future Sends with err and resets the stream, which also ends a
// write in progress at once.
func (s *sender) close(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil || s.closed == errDraining {
		s.closed = err
	}
	s.stopped = true
	if s.stream != nil {
		s.stream.CancelWrite(CodePoolClosed)
	}
	s.cond.Broadcast()
}

// errDraining fails Sends that start after Drain.
var errDraining = fmt.Errorf("stream pool draining for close: %w", errClosed)

// finish waits for writes in progress and pending messages, then ends the stream (FIN).
func (s *sender) finish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil {
		s.closed = errDraining
	}
	for s.flushing || s.pending() > 0 {
		if !s.flushing {
			// Waiters left (ctx ended) but their copies are still pending: write them.
			if err := s.flush(ctx, nil); err != nil {
				return err
			}
			continue
		}
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
	if s.stream != nil {
		err := s.stream.Close()
		s.stream = nil
		return err
	}
	return nil
}
