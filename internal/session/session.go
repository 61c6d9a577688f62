// Package session defines the one interface every peerwire core implements: an authenticated,
// multiplexed connection with bidirectional and unidirectional streams, stream-capacity
// notifications (CapacityConn), close with an application code and reason, and a context
// cancelled with the close cause.
//
// Everything above it (the message API in nettransport, the stream pool, the libp2p adapters,
// the node) is written once against these interfaces and runs on both cores: QUIC
// (internal/quicsession, over quic-go) and QMux (over TLS 1.3/TCP). The error types here are
// re-exported by nettransport, so callers match them with errors.As without importing an
// internal package.
package session

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/peerwire/peerwire/certs"
)

// ApplicationErrorCode is the code an application closes a connection with. The value is
// carried to the peer unchanged.
type ApplicationErrorCode uint64

// StreamErrorCode is the code a stream is reset (or asked to stop) with.
type StreamErrorCode uint64

// Well-known application codes used by peerwire itself. Applications may use any other value.
const (
	// CodeNoError is a normal, graceful close.
	CodeNoError ApplicationErrorCode = 0x0
	// CodeRejected closes a connection the accepting application refused (IncomingRequest.Reject).
	CodeRejected ApplicationErrorCode = 0x1
	// CodeShutdown closes connections when their transport or listener shuts down.
	CodeShutdown ApplicationErrorCode = 0x2
	// CodeUndelivered closes a connection whose graceful close gave up waiting for the peer
	// to read every message: the peer can tell that messages may be missing.
	CodeUndelivered ApplicationErrorCode = 0x3
)

// Capacity is how many more streams of each kind may be opened now without waiting for the
// peer to raise its limit (MAX_STREAMS).
type Capacity struct {
	Bidi int64
	Uni  int64
}

// State describes an established connection.
type State struct {
	// Core names the implementation: "quic" or "qmux".
	Core       string
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	// ALPN is the negotiated application protocol, as the application named it (for QMux, the
	// QMux suffix is removed).
	ALPN string
	// Peer is the peer's verified certificate and identities.
	Peer *certs.PeerCertificate
	// TLS is the raw TLS state.
	TLS tls.ConnectionState
}

// Conn is an authenticated multiplexed connection. It is safe for concurrent use.
//
// A dialed Conn is returned once our own handshake is complete: we verified the peer, but
// the listener may still refuse us. It then closes the connection and context.Cause of
// Context is a *CloseError that matches *certs.RejectedByPeerError (errors.As: the listener
// refused our certificate, a TLS certificate alert) or ErrRejected (errors.Is: its
// application refused us, CodeRejected). The message layer (nettransport) waits for the
// listener's explicit acceptance before handing a connection to its caller (docs/wire.md).
type Conn interface {
	// OpenStream opens a bidirectional stream, waiting for the peer's stream credit until ctx
	// is done.
	OpenStream(ctx context.Context) (Stream, error)
	// OpenUniStream opens a unidirectional send stream, waiting for stream credit until ctx is
	// done.
	OpenUniStream(ctx context.Context) (SendStream, error)
	// AcceptStream waits for the peer's next bidirectional stream.
	AcceptStream(ctx context.Context) (Stream, error)
	// AcceptUniStream waits for the peer's next unidirectional stream.
	AcceptUniStream(ctx context.Context) (ReceiveStream, error)

	// CloseWithError closes the connection with an application code and a reason the peer
	// receives. Closing an already closed connection is a no-op returning nil.
	CloseWithError(code ApplicationErrorCode, reason string) error
	// Context is cancelled when the connection closes; context.Cause returns the *CloseError.
	Context() context.Context
	// State returns addresses, ALPN and the peer's identity.
	State() State
}

// CapacityConn is a Conn that reports its stream capacity: how many streams the peer's
// limits (MAX_STREAMS) let us open now, and when the peer raises them. QMux connections
// always implement it; QUIC connections only when dialed or accepted with
// Config.TrackStreamCapacity, because quic-go tells its stream limits only to a connection
// tracer, which costs every packet (see internal/quicsession).
type CapacityConn interface {
	Conn
	// StreamCapacity reports how many streams may be opened now without waiting.
	StreamCapacity() Capacity
	// OnStreamCapacity registers f to be called whenever the peer raises a stream limit, with
	// the capacity after the change. f runs on the core's goroutine and must not block. The
	// returned function unregisters f.
	OnStreamCapacity(f func(Capacity)) (unregister func())
}

// SendStream is the sending half of a stream.
type SendStream interface {
	// StreamID is the QUIC stream ID (the same numbering on both cores).
	StreamID() int64
	// Write writes data; it blocks on flow control until the write deadline.
	io.Writer
	// Close ends the stream gracefully (FIN) after the written data.
	Close() error
	// CancelWrite abandons the stream (RESET_STREAM with code).
	CancelWrite(code StreamErrorCode)
	// SetWriteDeadline bounds blocked writes; a zero time means no deadline.
	SetWriteDeadline(t time.Time) error
}

// TryWriter is implemented by send streams that can tell a write they take at once from one
// that would wait (both cores buffer small writes). For a write that cannot wait, the stream
// pool then skips what only a waiting write needs: registering to interrupt it when the
// caller's context ends, which costs an allocation and a lock on a context shared by every
// caller.
type TryWriter interface {
	// TryWrite takes all of p and reports true when the stream can take it without
	// waiting; otherwise it takes nothing and reports false, and Write is the way to wait.
	// An error is the one Write would return (part of p may then have been taken).
	TryWrite(p []byte) (ok bool, err error)
}

// ReceiveStream is the receiving half of a stream.
type ReceiveStream interface {
	// StreamID is the QUIC stream ID.
	StreamID() int64
	// Read reads data; io.EOF after the peer's FIN.
	io.Reader
	// CancelRead tells the peer to stop sending (STOP_SENDING with code).
	CancelRead(code StreamErrorCode)
	// SetReadDeadline bounds blocked reads; a zero time means no deadline.
	SetReadDeadline(t time.Time) error
}

// Stream is a bidirectional stream.
type Stream interface {
	SendStream
	ReceiveStream
	// SetDeadline sets both deadlines.
	SetDeadline(t time.Time) error
}

// Listener hands out incoming connection attempts.
type Listener interface {
	// Accept waits for the next connection attempt.
	Accept(ctx context.Context) (Incoming, error)
	// Addr is the bound local address (with the real port).
	Addr() net.Addr
	// Close stops listening and closes connections not yet accepted. Established connections
	// stay open.
	Close() error
}

// Incoming is a connection attempt whose handshake is in progress or complete.
type Incoming interface {
	// RemoteAddr is the address the attempt came from.
	RemoteAddr() net.Addr
	// Accept waits for the handshake (including the mutual certificate checks) and returns the
	// connection. It returns a *certs.RejectError when our trust policy refused the peer, a
	// *certs.RejectedByPeerError when the peer refused our certificate, and an *ALPNError
	// when no application protocol was negotiated.
	Accept(ctx context.Context) (Conn, error)
	// Reject refuses the attempt: the handshake completes (our trust checks still apply),
	// then the connection closes with CodeRejected, which the dialer reports as ErrRejected.
	Reject() error
}

// Core is one implementation of the session layer (QUIC or QMux).
type Core interface {
	// Name is "quic" or "qmux".
	Name() string
	// Listen binds addr ("host:port") and returns a listener.
	Listen(addr string, cfg *Config) (Listener, error)
	// Dial connects to addr and returns once our own handshake is complete (on QMux, also
	// once the listener's transport parameters arrived); see Conn for a refusal that comes
	// later.
	Dial(ctx context.Context, addr string, cfg *Config) (Conn, error)
	// Close releases the core's shared resources (sockets used for dialing). Listeners and
	// connections are closed by their owners.
	Close() error
}
