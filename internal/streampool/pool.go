package streampool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
)

// Message is one received message.
type Message struct {
	// Data is the payload; the caller owns it.
	Data []byte
	// Transfer is the time from the arrival of the message's length prefix to the arrival of
	// its last byte: how long the body took to come in.
	Transfer time.Duration
}

// PeerRefusedError reports that the peer stopped our stream because a message exceeded its
// maximum message size. The message, and any sent with it in the same write, were not
// delivered.
type PeerRefusedError struct {
	StreamID int64
}

// Error explains the refusal.
func (e *PeerRefusedError) Error() string {
	return fmt.Sprintf("peer refused a message larger than its maximum message size (stream %d)", e.StreamID)
}

// Pool sends and receives messages over one session connection. It is safe for concurrent
// use. Its goroutines (one accepting streams, one per inbound stream) end when the
// connection closes or Close is called.
//
// Locks: p.mu, a sender's mu and the queue's mu are each taken alone, never while calling
// into the connection or its streams.
type Pool struct {
	conn    session.Conn
	cfg     Config
	senders []*sender
	next    atomic.Uint64

	queue  *recvQueue
	ctx    context.Context // ends with the connection or Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // acceptLoop and the stream readers

	mu       sync.Mutex
	streams  map[session.ReceiveStream]uint64 // inbound streams being read, by arrival number
	arrivals uint64                           // inbound streams accepted so far
	// drainReqs are the peer's drain requests waiting for earlier streams to be read.
	drainReqs []*drainReq
	// leftovers are whole messages readers held when the pool stopped (the connection closed
	// with the receive queue full): still delivered by Recv, in order, before the close error.
	leftovers []Message
	refused   atomic.Uint64

	// opened records that a send stream was ever opened: only then has Drain to ask.
	opened atomic.Bool
	// requestMu guards requested: our drain request went out (see requestDrain).
	requestMu sync.Mutex
	requested bool
	drained   *event // the peer answered our drain request
	accepted  *event // the peer sent ControlAccepted
}

// New starts a pool on conn. Close it (or close conn) to end its goroutines.
func New(conn session.Conn, cfg Config) *Pool {
	p := &Pool{
		conn:     conn,
		cfg:      cfg,
		queue:    newRecvQueue(cfg.receiveQueue()),
		streams:  make(map[session.ReceiveStream]uint64),
		drained:  newEvent(),
		accepted: newEvent(),
	}
	p.ctx, p.cancel = context.WithCancel(conn.Context())
	p.senders = make([]*sender, cfg.sendStreams())
	for i := range p.senders {
		p.senders[i] = newSender(p)
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

// Send queues msg on a send stream and returns once it was written to the stream (not once
// the peer received it). Messages of one goroutine arrive in order. If ctx ends while an
// earlier write is in progress, Send returns ctx's error and the message may still be sent.
// Errors: *framing.TooLargeError (nothing sent), *session.TimeoutError (no stream credit or a
// stalled write within the timeout), *PeerRefusedError, *session.CloseError.
func (p *Pool) Send(ctx context.Context, msg []byte) error {
	if err := p.conn.Context().Err(); err != nil {
		return context.Cause(p.conn.Context())
	}
	// A done ctx must not reach the flusher: its write would fail at once and drop a healthy
	// stream.
	if err := ctx.Err(); err != nil {
		return err
	}
	s := p.senders[0]
	if len(p.senders) > 1 {
		s = p.senders[p.next.Add(1)%uint64(len(p.senders))]
	}
	return s.send(ctx, msg)
}

// Recv returns the next message. Messages that arrived before the connection closed are
// still returned; after them Recv returns the *session.CloseError.
func (p *Pool) Recv(ctx context.Context) (Message, error) {
	for {
		if m, ok := p.queue.get(); ok {
			return m, nil
		}
		select {
		case <-p.queue.ready:
			p.queue.unwait()
			continue
		case <-ctx.Done():
			p.queue.unwait()
			return Message{}, ctx.Err()
		case <-p.ctx.Done():
			p.queue.unwait()
		}
		// Readers hand over what arrived before the close; wait for them.
		p.wg.Wait()
		if m, ok := p.queue.get(); ok {
			return m, nil
		}
		p.queue.unwait()
		p.mu.Lock()
		if len(p.leftovers) > 0 {
			m := p.leftovers[0]
			p.leftovers = p.leftovers[1:]
			p.mu.Unlock()
			return m, nil
		}
		p.mu.Unlock()
		if cause := context.Cause(p.conn.Context()); cause != nil {
			return Message{}, cause
		}
		return Message{}, errPoolClosed
	}
}

var errPoolClosed = fmt.Errorf("stream pool closed: %w", errClosed)

// errClosed makes Send after Close or Drain recognisable with errors.Is(err, net.ErrClosed).
var errClosed = net.ErrClosed

// Refused counts inbound streams stopped because a message exceeded MaxMessageSize.
func (p *Pool) Refused() uint64 { return p.refused.Load() }

// SendAccepted tells the peer that our application accepted the connection
// (ControlAccepted), within ctx and the stream timeout.
func (p *Pool) SendAccepted(ctx context.Context) error {
	return p.sendControl(ctx, ControlAccepted)
}

// Accepted is closed once the peer's ControlAccepted arrived. Messages the peer sent after
// it, even if they arrived first, wait in the receive queue.
func (p *Pool) Accepted() <-chan struct{} { return p.accepted.ch }

// Close stops the pool's goroutines and waits for them. It does not close the connection.
func (p *Pool) Close() error {
	p.cancel()
	p.mu.Lock()
	streams := make([]session.ReceiveStream, 0, len(p.streams))
	for rs := range p.streams {
		streams = append(streams, rs)
	}
	p.mu.Unlock()
	for _, rs := range streams {
		rs.CancelRead(CodePoolClosed)
	}
	for _, s := range p.senders {
		s.close(errPoolClosed)
	}
	p.wg.Wait()
	return nil
}

func (p *Pool) acceptLoop() {
	defer p.wg.Done()
	for {
		rs, err := p.conn.AcceptUniStream(p.ctx)
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			rs.CancelRead(CodePoolClosed)
			return
		}
		p.streams[rs] = p.arrivals
		p.arrivals++
		p.wg.Add(1) // released by streamDone
		p.mu.Unlock()
		go p.readStream(rs)
	}
}

// streamDone forgets an inbound stream that ended, answering the drain requests that waited
// for it last.
func (p *Pool) streamDone(rs session.ReceiveStream) {
	p.mu.Lock()
	seq := p.streams[rs]
	delete(p.streams, rs)
	answers := p.streamReadLocked(seq)
	p.mu.Unlock()
	for range answers {
		p.answerDrain()
	}
	p.wg.Done()
}

// readMessages delivers a message stream's messages until it ends. A message cut off by a
// reset, a FIN or a closed connection is discarded, never delivered in part.
func (p *Pool) readMessages(rs session.ReceiveStream, r *framing.Reader) {
	for {
		msg, transfer, err := r.ReadMessageTransfer()
		if err != nil {
			if errors.Is(err, framing.ErrTooLarge) {
				p.refused.Add(1)
				rs.CancelRead(CodeMessageTooLarge)
			} else {
				p.readFailed(rs, err)
			}
			return
		}
		m := Message{Data: msg, Transfer: transfer}
		if !p.queue.put(m, p.ctx.Done()) {
			p.keepLeftovers(m, r)
			return
		}
	}
}

// keepLeftovers stores m and every whole message still buffered in r or in the stream for
// Recv, so that a close right after the peer's last message does not lose what already
// arrived. The pool is stopping: after a closed connection a stream returns what it holds
// and then fails, and Close stops every stream still in p.streams, so reading ends.
func (p *Pool) keepLeftovers(m Message, r *framing.Reader) {
	kept := []Message{m}
	for {
		msg, transfer, err := r.ReadMessageTransfer()
		if err != nil {
			break
		}
		kept = append(kept, Message{Data: msg, Transfer: transfer})
	}
	p.mu.Lock()
	p.leftovers = append(p.leftovers, kept...)
	p.mu.Unlock()
}
