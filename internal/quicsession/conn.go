package quicsession

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/peerwire/peerwire/internal/sendbuf"
	"github.com/peerwire/peerwire/internal/session"
)

// conn adapts a *quic.Conn to session.Conn.
type conn struct {
	qc    *quic.Conn
	caps  *capacityTrace // nil unless the connection tracks its stream capacity
	state session.State

	ctx    context.Context
	cancel context.CancelCauseFunc
}

var _ session.Conn = (*conn)(nil)

// newConn wraps qc. onClose, when not nil, runs once qc closed. refusal, when not nil (a
// dialed connection), types the close of a peer that refused us after the dial returned (see
// the package doc): the cause's CloseError then carries its error in Err.
func newConn(qc *quic.Conn, hs *handshake, caps *capacityTrace, onClose func(), refusal func(error) error) *conn {
	cs := qc.ConnectionState()
	peer, _ := hs.verified()
	c := &conn{
		qc:   qc,
		caps: caps,
		state: session.State{
			Core:       "quic",
			LocalAddr:  qc.LocalAddr(),
			RemoteAddr: qc.RemoteAddr(),
			ALPN:       cs.TLS.NegotiatedProtocol,
			Peer:       peer,
			TLS:        cs.TLS,
		},
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	context.AfterFunc(qc.Context(), func() {
		cause := context.Cause(qc.Context())
		ce := closeError(cause)
		if refusal != nil {
			if ref := refusal(cause); ref != nil {
				ce.Err = ref
			}
		}
		c.cancel(ce)
		if onClose != nil {
			onClose()
		}
	})
	return c
}

func (c *conn) OpenStream(ctx context.Context) (session.Stream, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, c.openError(ctx, err)
	}
	if c.caps != nil {
		c.caps.opened(true)
	}
	return &stream{s: s}, nil
}

func (c *conn) OpenUniStream(ctx context.Context) (session.SendStream, error) {
	s, err := c.qc.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, c.openError(ctx, err)
	}
	if c.caps != nil {
		c.caps.opened(false)
	}
	// Send buffering (as MsQuic's): quic-go's Write waits for its connection loop beyond one
	// packet of data, so a sender of small messages would run at the hand-off rate, and its
	// TryWriteAll costs a copy of everything queued per call (internal/sendbuf's doc).
	return sendbuf.New(c.ctx, &sendStream{s: s}), nil
}

func (c *conn) AcceptStream(ctx context.Context) (session.Stream, error) {
	s, err := c.qc.AcceptStream(ctx)
	if err != nil {
		return nil, c.ctxError(ctx, err)
	}
	return &stream{s: s}, nil
}

func (c *conn) AcceptUniStream(ctx context.Context) (session.ReceiveStream, error) {
	s, err := c.qc.AcceptUniStream(ctx)
	if err != nil {
		return nil, c.ctxError(ctx, err)
	}
	return &receiveStream{s: s}, nil
}

// openError reports a caller's expired deadline while waiting for stream credit as a
// *session.TimeoutError, so callers can tell "peer grants no streams" from other failures.
func (c *conn) openError(ctx context.Context, err error) error {
	if ctx.Err() != nil && c.ctx.Err() == nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &session.TimeoutError{Op: "open stream"}
		}
		return ctx.Err()
	}
	return translate(err)
}

func (c *conn) ctxError(ctx context.Context, err error) error {
	if ctx.Err() != nil && c.ctx.Err() == nil {
		return ctx.Err()
	}
	return translate(err)
}

// session returns c as the session sees it: a session.CapacityConn when c tracks its stream
// capacity, so that callers can tell by a type assertion whether it does.
func (c *conn) session() session.Conn {
	if c.caps != nil {
		return capacityConn{c}
	}
	return c
}

// capacityConn is a conn made with Config.TrackStreamCapacity.
type capacityConn struct{ *conn }

var _ session.CapacityConn = capacityConn{}

func (c capacityConn) StreamCapacity() session.Capacity { return c.caps.capacity() }

func (c capacityConn) OnStreamCapacity(f func(session.Capacity)) func() { return c.caps.subscribe(f) }

func (c *conn) CloseWithError(code session.ApplicationErrorCode, reason string) error {
	err := c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
	// quic-go cancels its context asynchronously; make our own reflect the close at once.
	c.cancel(&session.CloseError{Kind: session.ClosedByApplication, Code: uint64(code), Reason: reason})
	return err
}

func (c *conn) Context() context.Context { return c.ctx }

func (c *conn) State() session.State { return c.state }

// As sets a **quic.Conn target to the underlying quic-go connection, for what the session
// interface does not offer; the libp2p adapter exposes it as go-libp2p's QUIC transport does.
// Closing the connection through it bypasses the session's own close bookkeeping.
func (c *conn) As(target any) bool {
	if t, ok := target.(**quic.Conn); ok {
		*t = c.qc
		return true
	}
	return false
}

// translate maps quic-go's errors to the session's, once, at the boundary.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var se *quic.StreamError
	if errors.As(err, &se) {
		return &session.StreamResetError{StreamID: int64(se.StreamID), Code: session.StreamErrorCode(se.ErrorCode), Remote: se.Remote}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !isCloseError(err) {
		return &session.TimeoutError{Op: "stream deadline"}
	}
	if isCloseError(err) {
		return closeError(err)
	}
	return err
}

func isCloseError(err error) bool {
	var (
		ae *quic.ApplicationError
		te *quic.TransportError
		ie *quic.IdleTimeoutError
		he *quic.HandshakeTimeoutError
		sr *quic.StatelessResetError
	)
	return errors.As(err, &ae) || errors.As(err, &te) || errors.As(err, &ie) || errors.As(err, &he) || errors.As(err, &sr)
}

// closeError converts the cause of a QUIC connection's end into a *session.CloseError.
func closeError(err error) *session.CloseError {
	var (
		ae *quic.ApplicationError
		te *quic.TransportError
		ie *quic.IdleTimeoutError
		he *quic.HandshakeTimeoutError
		ce *session.CloseError
	)
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &ae):
		return &session.CloseError{Kind: session.ClosedByApplication, Code: uint64(ae.ErrorCode), Reason: ae.ErrorMessage, Remote: ae.Remote, Err: err}
	case errors.As(err, &te):
		return &session.CloseError{Kind: session.ClosedByTransportError, Code: uint64(te.ErrorCode), Reason: te.ErrorMessage, Remote: te.Remote, Err: err}
	case errors.As(err, &ie), errors.As(err, &he):
		return &session.CloseError{Kind: session.ClosedByIdleTimeout, Err: err}
	default:
		return &session.CloseError{Kind: session.ClosedByNetwork, Err: err}
	}
}

type sendStream struct{ s *quic.SendStream }

func (s *sendStream) StreamID() int64 { return int64(s.s.StreamID()) }
func (s *sendStream) Write(p []byte) (int, error) {
	n, err := s.s.Write(p)
	return n, translate(err)
}
func (s *sendStream) Close() error                          { return translate(s.s.Close()) }
func (s *sendStream) CancelWrite(c session.StreamErrorCode) { s.s.CancelWrite(quic.StreamErrorCode(c)) }
func (s *sendStream) SetWriteDeadline(t time.Time) error    { return s.s.SetWriteDeadline(t) }

type receiveStream struct{ s *quic.ReceiveStream }

func (s *receiveStream) StreamID() int64 { return int64(s.s.StreamID()) }
func (s *receiveStream) Read(p []byte) (int, error) {
	n, err := s.s.Read(p)
	return n, translateRead(err)
}
func (s *receiveStream) CancelRead(c session.StreamErrorCode) {
	s.s.CancelRead(quic.StreamErrorCode(c))
}
func (s *receiveStream) SetReadDeadline(t time.Time) error { return s.s.SetReadDeadline(t) }

type stream struct{ s *quic.Stream }

func (s *stream) StreamID() int64 { return int64(s.s.StreamID()) }
func (s *stream) Write(p []byte) (int, error) {
	n, err := s.s.Write(p)
	return n, translate(err)
}
func (s *stream) Read(p []byte) (int, error) {
	n, err := s.s.Read(p)
	return n, translateRead(err)
}
func (s *stream) Close() error                          { return translate(s.s.Close()) }
func (s *stream) CancelWrite(c session.StreamErrorCode) { s.s.CancelWrite(quic.StreamErrorCode(c)) }
func (s *stream) CancelRead(c session.StreamErrorCode)  { s.s.CancelRead(quic.StreamErrorCode(c)) }
func (s *stream) SetWriteDeadline(t time.Time) error    { return s.s.SetWriteDeadline(t) }
func (s *stream) SetReadDeadline(t time.Time) error     { return s.s.SetReadDeadline(t) }
func (s *stream) SetDeadline(t time.Time) error         { return s.s.SetDeadline(t) }

// translateRead keeps io.EOF as is (readers compare it with ==).
func translateRead(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return translate(err)
}

// refCount closes a shared resource when its last user is gone.
type refCount struct {
	mu     sync.Mutex
	n      int
	closed bool
	fn     func()
}

func (r *refCount) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.n++
	return true
}

func (r *refCount) release() {
	r.mu.Lock()
	r.n--
	done := r.n == 0 && r.closed
	r.mu.Unlock()
	if done {
		r.fn()
	}
}

// shutdown marks the owner gone; fn runs now if no user remains, else after the last release.
func (r *refCount) shutdown() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	done := r.n == 0
	r.mu.Unlock()
	if done {
		r.fn()
	}
}
