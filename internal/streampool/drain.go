package streampool

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
)

// The graceful close (Drain) asks the peer whether it has read every stream we sent on, with
// markers: a stream whose length field holds one of these values instead of a message length
// carries no message but the marker, then ends.
//
//   - drainRequest, on a fresh stream opened after every send stream was finished: "tell me
//     once you have read every stream I opened before this one";
//   - drainDone, on a stream of the peer's, the answer.
//
// The receiver finds "every stream before this one" by arrival order: both cores hand out a
// peer's streams in stream-ID order, so when the request's stream is accepted every earlier
// one has been accepted already; the answer goes out once the last of them was read to its
// end (its messages are in the receive queue, Recv returns them). Messages are at most
// MaxMessageSize, below both values, so no message length is ever mistaken for a marker,
// and a receiver that did not know them would refuse the stream as too large rather than
// wait for 4 GiB.
//
// Why markers and not the peer's stream limits: a QUIC receiver grants one more stream per
// stream it consumed, so capacity back at its initial value would say the same, but quic-go
// shows a peer's stream limits only to a connection tracer, which costs every packet (see
// session.Config.TrackStreamCapacity). One request and one answer per graceful close cost
// nothing while the connection carries messages.
const (
	drainRequest uint32 = framing.MaxMessageSizeLimit
	drainDone    uint32 = framing.MaxMessageSizeLimit - 1
)

// MaxMessageSize is the largest Config.MaxMessageSize a pool accepts: 4 GiB − 3, below the
// two length values the graceful close uses as markers.
const MaxMessageSize = framing.MaxMessageSizeLimit - 2

// drainReq is a peer's drain request waiting for the streams that arrived before it.
type drainReq struct {
	seq  uint64 // the request stream's arrival number
	left int    // streams that arrived before it and are still being read
}

// marker handles a stream whose length field held a marker, reporting whether it did.
func (p *Pool) marker(rs session.ReceiveStream, err error) bool {
	var tl *framing.TooLargeError
	if !errors.As(err, &tl) || (tl.Size != uint64(drainRequest) && tl.Size != uint64(drainDone)) {
		return false
	}
	// Nothing follows a marker; stopping the stream releases it at once whatever the peer
	// does after.
	rs.CancelRead(CodeMarkerRead)
	if tl.Size == uint64(drainDone) {
		p.drainedOnce.Do(func() { close(p.drained) })
		return true
	}
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
	return true
}

// streamReadLocked counts an inbound stream that arrived as number seq and is now read, for the
// drain requests that wait for it. It returns how many requests it completed. Called with
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

// answerDrain sends drainDone on a stream of its own, from a goroutine: it may be called
// with the connection's state locked (a pushing stream that ended), where the connection
// must not be called.
func (p *Pool) answerDrain() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.sendMarker(p.ctx, drainDone)
	}()
}

// sendMarker opens a stream, writes the marker and finishes the stream, within the stream
// timeout and ctx, or until the pool closes.
func (p *Pool) sendMarker(ctx context.Context, m uint32) error {
	st, err := p.openStream(ctx)
	if err != nil {
		return err
	}
	var b [framing.HeaderSize]byte
	binary.BigEndian.PutUint32(b[:], m)
	_ = st.SetWriteDeadline(time.Now().Add(p.cfg.timeout()))
	if _, err := st.Write(b[:]); err != nil {
		st.CancelWrite(CodeWriteFailed)
		return err
	}
	return st.Close()
}

// requestDrain sends our drain request, once: a later Drain (after one that gave up) waits
// for the same answer.
func (p *Pool) requestDrain(ctx context.Context) error {
	p.requestMu.Lock()
	defer p.requestMu.Unlock()
	if p.requested {
		return nil
	}
	if err := p.sendMarker(ctx, drainRequest); err != nil {
		return err
	}
	p.requested = true
	return nil
}
