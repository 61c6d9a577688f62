package qmux

// conn.go: the connection's struct, its construction, and the lifetime of its goroutines.
//
// A conn runs two goroutines. The reader (conn_recv.go) reads records from the transport and
// applies their frames to the connection's state; it never waits for an application, so the
// connection makes progress whether or not streams are read (draft-02 §5). The writer
// (conn_send.go) builds records from what is queued (control frames, stream data) and writes
// them. Application calls (stream Read and Write, open, accept, close) change the state under
// mu and wake the goroutine or the waiter concerned.
//
// Invariants:
//   - mu guards the connection's state and every stream's: each sub-state below and the
//     fields of every stream. Fields set by newConn and never changed (nc, client, cfg,
//     local, ctx, cancel) are read without it.
//   - No code of another package runs under mu (the capacity subscribers of
//     OnStreamCapacity run after it is released, on the reader's goroutine).
//   - Only the reader reads nc and only the writer writes it, so neither holds mu during I/O.
//   - Each goroutine returns once: the writer after the last record (our CONNECTION_CLOSE, if
//     any) and the half-close, the reader when the transport ends. When both have returned,
//     ended is closed and the core's onEnded runs.

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// conn is a QMux connection over a reliable, ordered, secure byte stream (TLS in production,
// net.Pipe in protocol tests).
type conn struct {
	nc     net.Conn
	client bool
	cfg    *session.Config
	state  session.State
	local  wire.TransportParameters // ours, sent first

	ctx    context.Context
	cancel context.CancelCauseFunc

	life lifetime

	mu sync.Mutex
	// The peer's transport parameters; params is closed (paramsSeen) once the record that
	// carried them was applied.
	peer       wire.TransportParameters
	gotParams  bool
	paramsSeen bool
	params     chan struct{}

	streams streamsState // conn_streams.go
	flow    flowState    // conn_flow.go
	send    sendState    // conn_send.go
	recv    recvState    // conn_recv.go
	idle    idleState    // idle.go
	closing closeState   // conn_close.go
}

// lifetime tracks the reader and the writer goroutines: ended is closed when both have
// returned, and then onEnded runs (the core forgets the connection).
type lifetime struct {
	running atomic.Int32
	ended   chan struct{}
	mu      sync.Mutex
	isEnded bool
	onEnded func()
}

var _ session.Conn = (*conn)(nil)

// localParams are the transport parameters a conn with cfg sends. A listener with DialEarly
// needs them before its handshake (halfrtt.go), so they depend on cfg alone.
func localParams(cfg *session.Config) wire.TransportParameters {
	connWindow := min(initialConnWindow, cfg.ConnectionWindow())
	streamWin := min(initialStreamWindow, cfg.StreamWindow())
	return wire.TransportParameters{
		MaxIdleTimeout:                 cfg.Idle(),
		InitialMaxData:                 connWindow,
		InitialMaxStreamDataBidiLocal:  streamWin,
		InitialMaxStreamDataBidiRemote: streamWin,
		InitialMaxStreamDataUni:        streamWin,
		InitialMaxStreamsBidi:          uint64(cfg.IncomingStreams()),
		InitialMaxStreamsUni:           uint64(cfg.IncomingUniStreams()),
	}
}

// newConn starts a QMux connection over nc, whose handshake (if any) is complete: our
// transport parameters go out at once, and the reader and writer goroutines run until the
// connection ends.
func newConn(nc net.Conn, client bool, cfg *session.Config, state session.State) *conn {
	c := &conn{
		nc:     nc,
		client: client,
		cfg:    cfg,
		state:  state,
		local:  localParams(cfg),
		params: make(chan struct{}),
	}
	c.state.Core = "qmux"
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.streams.init(&c.local)
	c.flow.init(&c.local)
	c.idle.init()
	c.send.wake = make(chan struct{}, 1)
	c.recv.init(nc)
	c.life.ended = make(chan struct{})
	c.life.running.Store(2)
	c.signalWriter() // our parameters go out at once, first
	go c.readLoop()
	go c.writeLoop()
	return c
}

// goroutineDone is deferred by the reader and the writer: the last one to return ends the
// connection's life.
func (c *conn) goroutineDone() {
	if c.life.running.Add(-1) != 0 {
		return
	}
	close(c.life.ended)
	c.life.mu.Lock()
	f := c.life.onEnded
	c.life.isEnded, c.life.onEnded = true, nil
	c.life.mu.Unlock()
	if f != nil {
		f()
	}
}

// whenEnded arranges for f to run once the connection's goroutines have returned, at once if
// they have. One f per connection.
func (c *conn) whenEnded(f func()) {
	c.life.mu.Lock()
	if !c.life.isEnded {
		c.life.onEnded = f
		c.life.mu.Unlock()
		return
	}
	c.life.mu.Unlock()
	f()
}

// waitParams waits for the peer's QX_TRANSPORT_PARAMETERS, which must arrive before we open
// streams (draft-02 §4.2).
func (c *conn) waitParams(ctx context.Context) error {
	select {
	case <-c.params:
		return nil
	case <-c.ctx.Done():
		// The parameters and the end of the connection may have come together (select picks
		// at random among ready cases): the caller gets the conn, already closed, as it would
		// have a moment earlier, and looks at its cause.
		select {
		case <-c.params:
			return nil
		default:
		}
		return context.Cause(c.ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Context implements session.Conn: it ends when the connection closes, with the
// *session.CloseError as its cause.
func (c *conn) Context() context.Context { return c.ctx }

// State implements session.Conn.
func (c *conn) State() session.State { return c.state }

// signal wakes whoever waits on ch (a channel of capacity 1) without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
