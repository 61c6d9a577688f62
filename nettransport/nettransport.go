// Package nettransport is peerwire's public API: authenticated peer-to-peer connections that
// carry length-framed messages.
//
// A Transport listens and dials. Each side presents a Credential (its certificate and the
// trust policy that decides which peers it accepts). Dial and IncomingRequest.Accept return a
// Connection only once both sides have accepted each other: the listener's
// IncomingRequest.Accept sends peerwire's ACCEPTED signal on the new connection, and Dial
// returns when it arrives (within Config.StreamTimeout; a listener that never sends it, such
// as one that does not speak peerwire, makes Dial fail with a *TimeoutError). A refusal is a
// typed error from Dial or Accept itself (*certs.RejectError when we refused the peer,
// *certs.RejectedByPeerError when the peer refused us, ErrRejected when the listener's
// application did), never a surprise on the first Send. docs/wire.md describes what peerwire
// adds on the wire.
//
// A Connection sends and receives whole messages (Send, Recv) over pooled unidirectional
// streams; messages sent by one goroutine arrive in order.
//
// # Addresses
//
// Addresses are multiaddrs. The address picks the core:
//
//	/ip4/127.0.0.1/udp/4001/quic-v1   QUIC (quic-go)
//	/ip4/127.0.0.1/tcp/4001/qmux      QMux over TLS 1.3/TCP, for networks that block UDP
//
// Both cores offer the same API and the same guarantees; nothing but the address changes.
//
// # Cancellation
//
// Every blocking call takes a context.Context. Stream operations are additionally bounded by
// Config.StreamTimeout (12 s by default): opening a send stream, which waits for the peer's
// stream credit, and each write.
//
// # Errors
//
// Errors are typed and matched with errors.As / errors.Is: *CloseError (the connection ended;
// unwraps to net.ErrClosed), *TimeoutError (a net.Error with Timeout() true),
// *TooLargeError, *PeerRefusedError, *StreamResetError, *ALPNError, *AddrError, and the
// certificate errors of package certs. See docs/errors.md.
//
// # Coming from the Rust transport
//
// peerwire implements the Rust transport's API in Go. Its traits NetTransport, NetListener,
// NetIncomingRequest and NetConnection are Transport, Listener, IncomingRequest and
// Connection here; its credential (private key, certificate chain, trusted certificate
// hashes, trusted public keys) is a Credential; watch_close is Connection.Done; its
// STREAM_OP_TIMEOUT is Config.StreamTimeout.
package nettransport

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/streampool"
)

// Credential is what one side presents and trusts: its certificate (with identity key) and
// the policy deciding which peers it accepts.
type Credential struct {
	Certificate *certs.Credential
	Trust       certs.TrustPolicy
}

// Transport listens and dials. It is safe for concurrent use. Close releases everything it
// created: listeners, connections and sockets.
type Transport interface {
	// Listen binds addr and accepts peers that negotiate one of alpn (in the listener's order
	// of preference) and pass cred's trust policy.
	Listen(addr ma.Multiaddr, alpn []string, cred *Credential) (Listener, error)
	// Dial connects to addr offering alpn (in order of preference) and returns once both
	// sides accepted each other: our trust policy accepted the listener's certificate and
	// the listener's application accepted the connection (its ACCEPTED signal arrived).
	Dial(ctx context.Context, addr ma.Multiaddr, alpn []string, cred *Credential) (Connection, error)
	// Close closes every listener and connection of this transport.
	Close() error
}

// Listener hands out incoming connection requests.
type Listener interface {
	// Accept waits for the next connection request.
	Accept(ctx context.Context) (IncomingRequest, error)
	// Addr is the bound address with the real port.
	Addr() ma.Multiaddr
	// Close stops listening. Accepted connections stay open.
	Close() error
}

// IncomingRequest is a peer's connection attempt, surfaced as soon as it arrives.
type IncomingRequest interface {
	// RemoteAddr is where the attempt comes from.
	RemoteAddr() net.Addr
	// Accept completes when the handshake does, tells the dialer that the connection is
	// accepted (the ACCEPTED signal, which its Dial waits for) and returns the connection, or
	// the reason it failed (for example *certs.RejectError naming the refused certificate).
	Accept(ctx context.Context) (Connection, error)
	// Reject refuses the attempt.
	Reject() error
}

// Connection is an established, mutually authenticated connection carrying messages.
type Connection interface {
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// LocalIdentity is the hash of our certificate.
	LocalIdentity() identity.CertHash
	// RemoteIdentity is the hash of the peer's certificate.
	RemoteIdentity() identity.CertHash
	// RemotePeerID is the peer's key identity (stable across certificate rotation).
	RemotePeerID() identity.PeerID
	// RemoteCertificate is the peer's leaf certificate.
	RemoteCertificate() *x509.Certificate
	// RemoteIdentityKeys are the Ed25519 keys that signed the peer's certificate, primary
	// first.
	RemoteIdentityKeys() []identity.PublicKey
	// ALPN is the negotiated application protocol.
	ALPN() string
	// ALPNIs reports whether the negotiated protocol is p.
	ALPNIs(p string) bool
	// Core names the implementation carrying the connection (QUIC or QMux).
	Core() Core

	// Send sends one message. It returns once the message was written to the stream.
	Send(ctx context.Context, msg []byte) error
	// Recv returns the next message and the time its body took to arrive.
	Recv(ctx context.Context) ([]byte, time.Duration, error)

	// Close closes the connection gracefully with code 0: it first waits (at most the stream
	// timeout) until the peer has read every message already sent. If the peer did not read
	// them in time, it returns a *TimeoutError and closes with CodeUndelivered instead, so
	// the peer knows messages may be missing.
	Close() error
	// CloseWithError closes the connection at once with an application code and a reason
	// the peer receives. Messages still in flight are discarded.
	CloseWithError(code ApplicationErrorCode, reason string) error
	// Done is closed when the connection is shut down, by either side.
	Done() <-chan struct{}
	// Err is nil while the connection is open and then the *CloseError saying who closed it
	// and why.
	Err() error
	// Context is cancelled when the connection closes, with Err as its cause.
	Context() context.Context
}

// Error and code types, defined by the layers below and re-exported here.
type (
	// ApplicationErrorCode is a connection close code; carried to the peer unchanged.
	ApplicationErrorCode = session.ApplicationErrorCode
	// CloseError reports why a connection ended; unwraps to net.ErrClosed.
	CloseError = session.CloseError
	// TimeoutError reports an operation that ran out of time; a net.Error.
	TimeoutError = session.TimeoutError
	// StreamResetError reports a reset stream.
	StreamResetError = session.StreamResetError
	// ALPNError reports that a handshake agreed on no application protocol.
	ALPNError = session.ALPNError
	// TooLargeError reports a message above the maximum size; nothing was sent.
	TooLargeError = framing.TooLargeError
	// PeerRefusedError reports that the peer refused a message above its maximum size.
	PeerRefusedError = streampool.PeerRefusedError
)

// Close codes peerwire uses itself.
const (
	CodeNoError     = session.CodeNoError
	CodeRejected    = session.CodeRejected
	CodeShutdown    = session.CodeShutdown
	CodeUndelivered = session.CodeUndelivered
)

// CloseKind says what ended a connection (CloseError.Kind).
type CloseKind = session.CloseKind

// The kinds of CloseError.
const (
	ClosedByApplication    = session.ClosedByApplication
	ClosedByTransportError = session.ClosedByTransportError
	ClosedByIdleTimeout    = session.ClosedByIdleTimeout
	ClosedByNetwork        = session.ClosedByNetwork
)

// ErrRejected: the accepting application refused the connection (IncomingRequest.Reject):
// returned by the dialer's Dial, matched with errors.Is.
var ErrRejected = session.ErrRejected

// ErrTransportClosed is returned by a Transport's methods after Close.
var ErrTransportClosed = errors.New("peerwire: transport closed")
