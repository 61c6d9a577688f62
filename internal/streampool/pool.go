package streampool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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
// use. Its goroutines end when the connection closes or Close is called: one accepting
// streams, and one per inbound stream, except on a core whose streams push their data
// (session.PushReceiveStream, QMux), where messages are parsed by whoever reads the
// connection and a stream gets a goroutine only while the receive queue is full. On QMux
// (session.ReadDriver) a Recv that finds nothing queued reads the connection itself.
type Pool struct {
	conn    session.Conn
	cfg     Config
	senders []*sender
	next    atomic.Uint64

	queue *recvQueue
	// driver is the connection when Recv may read it itself (QMux, session.ReadDriver);
	// driveDone tells a driving Recv to stop: a message is queued, or the pool is closing.
	driver    session.ReadDriver
	driveDone func() bool
	// handedOver is the driver's ReadHandedOver (nil, never ready, without a driver): a Recv
	// whose DriveRead found the connection's reader reading waits for it beside the queue.
	handedOver <-chan struct{}
	// driving counts Recvs reading the connection: a message a readLoop queues (not parsed
	// by the reading goroutine itself) must interrupt them, or they would keep reading.
	driving atomic.Int32
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

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
	// drained is closed when the peer answered our drain request.
	drained     chan struct{}
	drainedOnce sync.Once
}

// New starts a pool on conn. Close it (or close conn) to end its goroutines.
func New(conn session.Conn, cfg Config) *Pool {
	p := &Pool{
		conn:    conn,
		cfg:     cfg,
		queue:   newRecvQueue(cfg.receiveQueue()),
		streams: make(map[session.ReceiveStream]uint64),
		drained: make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(conn.Context())
	if d, ok := conn.(session.ReadDriver); ok {
		p.driver, p.handedOver = d, d.ReadHandedOver()
		p.driveDone = func() bool { return p.queue.nonEmpty() || p.ctx.Err() != nil }
	}
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
	// A done ctx must not reach the flusher: its write would fail at once and reset a healthy
	// stream, discarding earlier messages the peer has not read yet.
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
		if m, ok := p.queue.tryGet(); ok {
			return m, nil
		}
		// Nothing queued: on a connection that lets us (QMux), read it on this goroutine
		// until a message is queued, so that the goroutine that parses the message is the
		// one that returns it, rather than waking us.
		if p.driver != nil && ctx.Err() == nil && p.ctx.Err() == nil {
			p.driving.Add(1)
			drove := p.driver.DriveRead(ctx, p.driveDone)
			p.driving.Add(-1)
			if drove {
				continue
			}
		}
		if m, ok := p.queue.get(); ok {
			return m, nil
		}
		select {
		case <-p.queue.ready:
			p.queue.unwait()
			continue
		case <-p.handedOver:
			// The connection's reader stopped reading for us: drive again.
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

// Drain finishes every send stream after the messages already handed to Send, and waits
// until the peer's pool has read them all to their end (or ctx ends, or the connection
// closes): it asks the peer, which answers once it has (see drainRequest). Sends after Drain
// started fail. It is the first half of a graceful close: closing the connection right after
// Send would discard messages still in flight. A pool that never sent returns at once.
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
	case <-p.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.conn.Context().Done():
		return context.Cause(p.conn.Context())
	}
}

// Close stops the pool's goroutines and waits for them. It does not close the connection.
func (p *Pool) Close() error {
	p.cancel()
	if p.driver != nil {
		p.driver.InterruptRead() // a Recv reading the connection (driveDone sees the cancel)
	}
	// p.mu is not held while calling into the connection: a pushing stream calls back into
	// the pool with the connection's state locked (pushReader), so the lock order is
	// connection, then pool.
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
		p.wg.Add(1) // released by whoever ends the stream: streamDone
		p.mu.Unlock()
		if ps, ok := rs.(session.PushReceiveStream); ok {
			ps.Push(&pushReader{p: p, rs: rs, dec: framing.NewDecoder(p.cfg.maxMessage())})
			// Push handed over, on this goroutine, the messages the stream held already: a
			// Recv reading the connection meanwhile does not see them arrive, as it sees
			// those it parses itself, and must stop to return them.
			if p.driver != nil && p.driving.Load() > 0 && p.queue.nonEmpty() {
				p.driver.InterruptRead()
			}
		} else {
			go p.readLoop(rs, nil, nil, nil)
		}
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

// readLoop delivers one inbound stream's messages until it ends. A pushReader hands a
// stream over with the messages the queue had no room for (first) and the bytes it took of
// the next one (partial), or with the error that stopped it (a message too large). A message
// cut off by a reset or a closed connection is discarded, never delivered in part.
func (p *Pool) readLoop(rs session.ReceiveStream, first []Message, partial []byte, stopped error) {
	defer p.streamDone(rs)
	var src io.Reader = rs
	if len(partial) > 0 {
		src = io.MultiReader(bytes.NewReader(partial), rs)
	}
	r := framing.NewReader(src, p.cfg.maxMessage())
	for i, m := range first {
		if !p.put(m) {
			p.keepLeftovers(first[i:], r, stopped == nil)
			return
		}
	}
	for {
		var msg []byte
		var transfer time.Duration
		err := stopped
		if err == nil {
			msg, transfer, err = r.ReadMessageTransfer()
		}
		if err != nil {
			if p.marker(rs, err) {
				return
			}
			if errors.Is(err, framing.ErrTooLarge) {
				p.refused.Add(1)
				rs.CancelRead(CodeMessageTooLarge)
			} else if !errors.Is(err, io.EOF) {
				rs.CancelRead(CodePoolClosed)
			}
			return
		}
		m := Message{Data: msg, Transfer: transfer}
		if !p.put(m) {
			p.keepLeftovers([]Message{m}, r, true)
			return
		}
	}
}

// put queues a message a readLoop parsed, waiting for room; false once the pool stopped. A
// Recv reading the connection meanwhile stops, to return it: it does not see the message
// arrive, as it sees those it parses itself.
func (p *Pool) put(m Message) bool {
	if !p.queue.put(m, p.ctx.Done()) {
		return false
	}
	if p.driving.Load() > 0 {
		p.driver.InterruptRead()
	}
	return true
}

// keepLeftovers stores kept and, when more, every whole message still buffered in r or in
// the stream for Recv, so that a close right after the peer's last message does not lose what already
// arrived. The pool is stopping: after a closed connection a stream returns what it holds
// and then fails, and Close cancels every stream still in p.streams, so reading ends.
func (p *Pool) keepLeftovers(kept []Message, r *framing.Reader, more bool) {
	for more {
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

// pushReader parses the messages of a stream that pushes its data (session.PushReceiveStream,
// the QMux core) on the connection's reading goroutine, straight into the receive queue: one
// goroutine hand-off per message fewer than readLoop, and no goroutine per stream. Messages
// are queued in batches, one lock per batch. When the queue is full, or a message is too
// large, it hands the stream to a readLoop goroutine, which can wait: with the messages the
// queue refused and the bytes taken of the next message.
//
// Its methods run with the connection's state locked: they must not call the stream.
type pushReader struct {
	p   *Pool
	rs  session.ReceiveStream
	dec *framing.Decoder

	batch   [pushBatch]Message // messages parsed and not yet queued
	nbatch  int
	pending []Message // messages the queue had no room for; the stream is handed over
}

// pushBatch is how many messages a pushReader parses before it queues them.
const pushBatch = 16

// PushData implements session.PushHandler.
func (r *pushReader) PushData(data []byte, fin bool) (int, bool) {
	n, err := r.dec.Feed(data, r.emit)
	return n, r.fed(err, fin)
}

// PushRoom implements session.RoomPushHandler: the rest of a large message's payload is read
// into the message itself.
func (r *pushReader) PushRoom(n int) []byte { return r.dec.Room(n) }

// PushWritten implements session.RoomPushHandler.
func (r *pushReader) PushWritten(n int, fin bool) bool {
	r.dec.Commit(n, r.emit)
	return r.fed(nil, fin)
}

// fed queues what the bytes just fed completed and reports whether the pushing goes on: it
// hands the stream to a readLoop when the queue had no room or the decoder failed (err), and
// ends it at the FIN.
func (r *pushReader) fed(err error, fin bool) bool {
	if r.pending == nil {
		r.flush()
	}
	switch {
	case r.pending != nil || err != nil:
		// The decoder may hold the start of the message after the last one queued: the
		// readLoop parses it first.
		var partial []byte
		if err == nil {
			partial = r.dec.Detach()
		}
		go r.p.readLoop(r.rs, r.pending, partial, err)
		return false
	case fin:
		// Every whole message is queued; one cut off by the FIN is discarded.
		r.p.streamDone(r.rs)
		return false
	}
	return true
}

// emit collects a message, queueing the batch when it is full. It returns false, stopping
// the decoder at this message's end, when the queue had no room.
func (r *pushReader) emit(msg []byte, transfer time.Duration) bool {
	r.batch[r.nbatch] = Message{Data: msg, Transfer: transfer}
	r.nbatch++
	if r.nbatch < pushBatch {
		return true
	}
	return r.flush()
}

// flush queues the batch, keeping in r.pending what did not fit.
func (r *pushReader) flush() bool {
	if r.nbatch == 0 {
		return true // a record that completed no message: no lock to take
	}
	b := r.batch[:r.nbatch]
	k := r.p.queue.putSome(b)
	if k < len(b) {
		r.pending = slices.Clone(b[k:])
	}
	clear(b)
	r.nbatch = 0
	return r.pending == nil
}

// PushEnded implements session.PushHandler: a reset, CancelRead or a closed connection.
// Whole messages are in the queue already (a batch is queued before PushData returns); a
// partial one is discarded.
func (r *pushReader) PushEnded(error) {
	r.p.streamDone(r.rs)
}
