package streampool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
// There is no goroutine or allocation per message.
type sender struct {
	p *Pool

	mu        sync.Mutex
	cond      sync.Cond
	pending   []byte // framed small messages waiting for the next write
	spare     []byte // the previous batch's buffer, reused
	nextID    uint64 // ID of the batch pending will become
	doneID    uint64 // every batch with an ID < doneID has been written (or failed)
	waiters   int    // Sends waiting in the pending batch
	abandoned int    // Sends of the batch being written that stopped waiting (ctx ended)
	flushing  bool
	failed    map[uint64]*failure // failed batches with Sends yet to collect the error
	closed    error
	stopped   bool // the pool closed: the stream is reset and no new one is opened

	// stream is used by the flusher only, but changed under mu so that close can reset it.
	stream session.SendStream
	// Owned by the flusher.
	segs [3][]byte
	hdr  [framing.HeaderSize]byte

	// stall cuts a write that takes no data for the timeout. It is one timer for the
	// sender's life, ticking every timeout/stallTicks only while a write is in progress: a
	// write still in progress at stallTicks+1 consecutive ticks has waited at least the
	// timeout and is cut. Writes themselves neither read the clock nor touch the timer (a
	// stream that waits for flow control under a deadline would start a timer of its own,
	// allocating, on every wait).
	stall       *time.Timer
	stallMu     sync.Mutex
	ticking     bool               // the stall timer is running
	armed       session.SendStream // the stream being written, nil between writes
	armedSeq    uint64             // counts writes: tells one long write from several short ones
	seenSeq     uint64             // the write seen in progress at the last tick
	seenTicks   int                // consecutive ticks that saw it
	stalled     bool               // stall cut the write in progress
	deadlineSet bool               // a cut left a past write deadline on the stream
}

// stallTicks is how many ticks make up the stall timeout.
const stallTicks = 4

type failure struct {
	err     error
	waiters int
}

func newSender(p *Pool) *sender {
	s := &sender{p: p}
	s.cond.L = &s.mu
	return s
}

func (s *sender) send(ctx context.Context, msg []byte) error {
	if len(msg) > coalesceLimit {
		return s.sendLarge(ctx, msg)
	}
	s.mu.Lock()
	for len(s.pending) > 0 && len(s.pending)+framing.HeaderSize+len(msg) > s.p.cfg.maxBatch() {
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
	if s.pending, err = framing.AppendMessage(s.pending, msg, s.p.cfg.maxMessage()); err != nil {
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
	batch := s.pending
	s.pending = s.spare[:0]
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
	if cap(batch) <= s.p.cfg.maxBatch()*2 {
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

// write puts one batch on the stream, opening the stream first if needed. Only the flusher
// calls it.
func (s *sender) write(ctx context.Context, batch, large []byte) error {
	if s.stream == nil {
		if s.isStopped() {
			return errPoolClosed
		}
		st, err := s.open(ctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		stopped := s.stopped
		if !stopped {
			s.stream = st
		}
		s.mu.Unlock()
		if stopped {
			st.CancelWrite(CodePoolClosed)
			return errPoolClosed
		}
	}
	timeout := s.p.cfg.timeout()
	st := s.stream
	if s.stall == nil {
		s.stall = time.AfterFunc(timeout, s.cutStalled)
		s.stall.Stop()
	}
	// A write that waits is cut when ctx ends. Registering for that costs an allocation and a
	// lock on ctx, shared with every other caller using it, so it is done only before a write
	// that may wait: a stream that can tell (session.TryWriter) takes what it has room for at
	// once, as most writes are.
	tw, _ := st.(session.TryWriter)
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	segs := s.segs[:0]
	if len(batch) > 0 {
		segs = append(segs, batch)
	}
	if large != nil {
		binary.BigEndian.PutUint32(s.hdr[:], uint32(len(large)))
		segs = append(segs, s.hdr[:], large)
	}
	// The timeout is a stall timeout: each chunk must be taken by the stream within it, so a
	// big message on a slow path is not cut off while it makes progress.
	for _, b := range segs {
		for len(b) > 0 {
			n := min(len(b), writeChunk)
			if tw != nil && ctx.Err() == nil {
				ok, err := tw.TryWrite(b[:n])
				if err != nil {
					if s.abandon(st, err) {
						return errPoolClosed
					}
					return s.writeError(ctx, err, false, timeout)
				}
				if ok {
					b = b[n:]
					continue
				}
			}
			if stop == nil && ctx.Done() != nil {
				stop = context.AfterFunc(ctx, func() { s.cut(st) })
			}
			s.arm(st, timeout)
			if ctx.Err() != nil {
				s.cut(st)
			}
			_, err := st.Write(b[:n])
			stalled := s.disarm()
			if err != nil {
				if s.abandon(st, err) {
					return errPoolClosed
				}
				return s.writeError(ctx, err, stalled, timeout)
			}
			b = b[n:]
		}
	}
	return nil
}

// abandon drops the stream after a failed write; the next Send opens a fresh one. A stream
// that is still alive (the write timed out or was cancelled) is finished gracefully rather
// than reset: messages written before are still delivered, and the peer discards the
// message cut short by the FIN (its reader sees an unexpected end), so nothing partial and
// nothing already sent is lost. It reports whether the pool closed, which reset the stream.
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

func (s *sender) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

func (s *sender) open(ctx context.Context) (session.SendStream, error) {
	st, err := s.p.openStream(ctx)
	if err == nil {
		s.p.opened.Store(true)
	}
	return st, err
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

// arm marks the start of one write on st for the stall timer, clearing any deadline a cut
// left behind.
func (s *sender) arm(st session.SendStream, timeout time.Duration) {
	s.stallMu.Lock()
	if s.deadlineSet {
		_ = st.SetWriteDeadline(time.Time{})
		s.deadlineSet = false
	}
	s.armed, s.stalled = st, false
	s.armedSeq++
	if !s.ticking {
		s.ticking = true
		s.seenTicks = 0
		s.stall.Reset(timeout / stallTicks)
	}
	s.stallMu.Unlock()
}

// disarm marks the end of a write and reports whether the stall timer cut it.
func (s *sender) disarm() bool {
	s.stallMu.Lock()
	defer s.stallMu.Unlock()
	s.armed = nil
	return s.stalled
}

// cut ends the write in progress on st at once with a past deadline.
func (s *sender) cut(st session.SendStream) {
	s.stallMu.Lock()
	defer s.stallMu.Unlock()
	s.deadlineSet = true
	_ = st.SetWriteDeadline(time.Unix(1, 0))
}

// cutStalled runs on each tick of the stall timer while writes are in progress.
func (s *sender) cutStalled() {
	s.stallMu.Lock()
	defer s.stallMu.Unlock()
	if s.armed == nil {
		s.ticking = false
		return
	}
	if s.armedSeq != s.seenSeq {
		s.seenSeq, s.seenTicks = s.armedSeq, 0
	}
	s.seenTicks++
	if s.seenTicks > stallTicks {
		// Seen at stallTicks+1 ticks stallTicks apart: in progress for at least the timeout.
		s.stalled, s.deadlineSet, s.ticking = true, true, false
		_ = s.armed.SetWriteDeadline(time.Unix(1, 0))
		return
	}
	s.stall.Reset(s.p.cfg.timeout() / stallTicks)
}

func (s *sender) writeError(ctx context.Context, err error, stalled bool, timeout time.Duration) error {
	var te *session.TimeoutError
	if errors.As(err, &te) {
		if cerr := ctx.Err(); cerr != nil && !stalled {
			return cerr
		}
		return &session.TimeoutError{Op: "write", After: timeout}
	}
	var re *session.StreamResetError
	if errors.As(err, &re) && re.Remote && re.Code == CodeMessageTooLarge {
		return &PeerRefusedError{StreamID: re.StreamID}
	}
	return err
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
	for s.flushing || len(s.pending) > 0 {
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
