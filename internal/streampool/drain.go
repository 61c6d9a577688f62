package streampool

import (
	"context"

	"github.com/peerwire/peerwire/internal/session"
)

// The graceful close (Drain) asks the peer whether it has read every stream we sent on, with
// two control codes:
//
//   - ControlDrainRequest, on a control stream opened after every send stream was finished:
//     "tell me once you have read to its end every stream I opened before this one";
//   - ControlDrainDone, on a control stream of the peer's, the answer.
//
// The receiver finds "every stream before this one" by arrival order: both cores hand out a
// peer's streams in stream-ID order, so when the request's stream is accepted every earlier
// one has been accepted already; the answer goes out once the last of them was read to its
// end (its messages are in the receive queue, Recv returns them).
//
// Why a request and not the peer's stream limits: a QUIC receiver grants one more stream per
// stream it consumed, so capacity back at its initial value would say the same, but quic-go
// shows a peer's stream limits only to a connection tracer, which costs every packet (see
// session.Config.TrackStreamCapacity). One request and one answer per graceful close cost
// nothing while the connection carries messages.

// Drain finishes every send stream after the messages already handed to Send, and waits
// until the peer's pool has read them all to their end (or ctx ends, or the connection
// closes): it asks the peer, which answers once it has. Sends after Drain started fail. It is
// the first half of a graceful close: closing the connection right after Send would discard
// messages still in flight. A pool that never sent returns at once.
func (p *Pool) Drain(ctx context.Context) error {
	for _, s := range p.senders {
		if err := s.finish(ctx); err != nil {
			return err
		}
	}
	if !p.opened.Load() {
		return nil
	}
	if err := p.requestDrain(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.conn.Context().Err() != nil {
			return context.Cause(p.conn.Context())
		}
		return err
	}
	select {
	case <-p.drained.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.conn.Context().Done():
		return context.Cause(p.conn.Context())
	}
}

// requestDrain sends our drain request, once: a later Drain (after one that gave up) waits
// for the same answer.
func (p *Pool) requestDrain(ctx context.Context) error {
	p.requestMu.Lock()
	defer p.requestMu.Unlock()
	if p.requested {
		return nil
	}
	if err := p.sendControl(ctx, ControlDrainRequest); err != nil {
		return err
	}
	p.requested = true
	return nil
}

// drainReq is a peer's drain request waiting for the streams that arrived before it.
type drainReq struct {
	seq  uint64 // the request stream's arrival number
	left int    // streams that arrived before it and are still being read
}

// drainRequested handles the peer's drain request, read on stream rs: it is answered at once
// if every stream that arrived before rs has been read to its end, else once the last of
// them has (streamReadLocked).
func (p *Pool) drainRequested(rs session.ReceiveStream) {
	p.mu.Lock()
	seq := p.streams[rs]
	left := 0
	for _, s := range p.streams {
		if s < seq {
			left++
		}
	}
	if left > 0 {
		p.drainReqs = append(p.drainReqs, &drainReq{seq: seq, left: left})
	}
	p.mu.Unlock()
	if left == 0 {
		p.answerDrain()
	}
}

// streamReadLocked counts an inbound stream that arrived as number seq and is now read, for
// the drain requests that wait for it. It returns how many requests it completed. Called with
// p.mu held.
func (p *Pool) streamReadLocked(seq uint64) (answers int) {
	kept := p.drainReqs[:0]
	for _, r := range p.drainReqs {
		if seq < r.seq {
			if r.left--; r.left == 0 {
				answers++
				continue
			}
		}
		kept = append(kept, r)
	}
	clear(p.drainReqs[len(kept):])
	p.drainReqs = kept
	return answers
}

// answerDrain sends ControlDrainDone, on the goroutine of the stream read last (whose reading
// is over), bounded by the stream timeout and the pool's life.
func (p *Pool) answerDrain() {
	_ = p.sendControl(p.ctx, ControlDrainDone)
}
