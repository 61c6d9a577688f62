package session

import (
	"errors"
	"time"

	"github.com/peerwire/peerwire/certs"
)

// Defaults applied where a Config field is zero.
const (
	// DefaultHandshakeTimeout bounds a TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultAcceptTimeout bounds how long a dialer waits, after its own handshake finished,
	// for the listener's application to accept it (nettransport's ACCEPTED message).
	DefaultAcceptTimeout = 12 * time.Second
	// DefaultIdleTimeout closes a connection from which nothing arrived for this long. With
	// keep-alives every DefaultKeepAlivePeriod, a live peer is never idle; a dead one is
	// detected within this time.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultKeepAlivePeriod is how often an otherwise quiet connection sends a keep-alive.
	DefaultKeepAlivePeriod = 10 * time.Second
	// DefaultMaxIncomingUniStreams is how many concurrent unidirectional streams the peer may
	// open (the Rust transport's setting).
	DefaultMaxIncomingUniStreams = 1024
	// DefaultMaxStreamReceiveWindow and DefaultMaxConnectionReceiveWindow cap flow-control
	// window auto-tuning.
	DefaultMaxStreamReceiveWindow     = 16 << 20
	DefaultMaxConnectionReceiveWindow = 64 << 20
)

// Config is what a core needs to listen or dial. The zero value of each field means its
// documented default. A Config must not be modified after it was passed to a core.
type Config struct {
	// Credential is our certificate and identity key. Required.
	Credential *certs.Credential
	// Trust decides which peers we accept. Required; an empty policy must set
	// AnyAuthenticated explicitly.
	Trust *certs.TrustPolicy
	// ALPN lists application protocols: in order of preference when dialing, the supported
	// set when listening. Required.
	ALPN []string

	// HandshakeTimeout bounds the TLS handshake. Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// AcceptTimeout bounds the wait, after the dialer's handshake, for the listener's
	// application to accept the connection: nettransport's Dial waits that long for the
	// listener's ACCEPTED message. The cores do not use it. Zero means DefaultAcceptTimeout.
	AcceptTimeout time.Duration
	// IdleTimeout closes a connection silent for this long. Zero means DefaultIdleTimeout;
	// negative disables it (not recommended: a dead peer then goes unnoticed).
	IdleTimeout time.Duration
	// KeepAlivePeriod sends keep-alives on a quiet connection. Zero means
	// DefaultKeepAlivePeriod; negative disables them.
	KeepAlivePeriod time.Duration
	// MaxIncomingStreams is how many concurrent bidirectional streams the peer may open. Zero
	// means none (messaging uses unidirectional streams only).
	MaxIncomingStreams int64
	// MaxIncomingUniStreams is how many concurrent unidirectional streams the peer may open.
	// Zero means DefaultMaxIncomingUniStreams; negative means none.
	MaxIncomingUniStreams int64
	// MaxStreamReceiveWindow caps a stream's flow-control window. Zero means
	// DefaultMaxStreamReceiveWindow.
	MaxStreamReceiveWindow uint64
	// MaxConnectionReceiveWindow caps the connection's flow-control window. Zero means
	// DefaultMaxConnectionReceiveWindow.
	MaxConnectionReceiveWindow uint64
	// TrackStreamCapacity makes a QUIC connection a CapacityConn. quic-go reports the peer's
	// stream limits only to a connection tracer, which builds an event for every packet sent
	// and received: on loopback 10-17% of bulk throughput and a few microseconds per round
	// trip. Nothing in peerwire needs it (the stream pool's graceful drain does not); it is
	// for users of the session interface that do. QMux connections report their capacity
	// either way, at no cost.
	TrackStreamCapacity bool
	// AcceptQueueLength bounds connection attempts waiting for Listener.Accept; further
	// attempts are refused. Zero means 128.
	AcceptQueueLength int
	// DialEarly matters only to a QMux listener: with it, the listener sends its transport
	// parameters at 0.5-RTT (right after its TLS Finished), so its dialers' Dial returns
	// before the listener has checked their certificates; without it, the parameters follow
	// that check. It has no effect on a QMux dialer, nor on QUIC, whose Dial always returns
	// once the dialer's own handshake is complete. In every case a listener that refuses the
	// dialer afterwards closes the connection, and the cause of its Context says why (a
	// *certs.RejectedByPeerError or session.ErrRejected).
	DialEarly bool
	// SingleStack makes Listen bind a wildcard address in its own family only: 0.0.0.0 is
	// IPv4, :: is IPv6, as multiaddrs mean them, so that an IPv4 and an IPv6 listener can
	// share a port. False (the default) keeps Go's behaviour, in which a wildcard listener of
	// either family is one dual-stack socket. The QMux core does not support it yet.
	SingleStack bool
}

// Validate reports a missing or inconsistent setting.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("peerwire: nil config")
	}
	if c.Credential == nil {
		return errors.New("peerwire: config has no credential")
	}
	if c.Trust == nil {
		return errors.New("peerwire: config has no trust policy")
	}
	if err := c.Trust.Validate(); err != nil {
		return err
	}
	if len(c.ALPN) == 0 {
		return errors.New("peerwire: config lists no ALPN protocol")
	}
	for _, p := range c.ALPN {
		if p == "" || len(p) > 255 {
			return errors.New("peerwire: ALPN protocol names must be 1 to 255 bytes")
		}
	}
	return nil
}

func orDefault[T ~int64 | ~int | ~uint64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Handshake returns the effective handshake timeout.
func (c *Config) Handshake() time.Duration {
	return orDefault(c.HandshakeTimeout, DefaultHandshakeTimeout)
}

// AcceptWait returns the effective accept timeout (AcceptTimeout).
func (c *Config) AcceptWait() time.Duration {
	return orDefault(c.AcceptTimeout, DefaultAcceptTimeout)
}

// Idle returns the effective idle timeout; zero means disabled.
func (c *Config) Idle() time.Duration {
	if c.IdleTimeout < 0 {
		return 0
	}
	return orDefault(c.IdleTimeout, DefaultIdleTimeout)
}

// KeepAlive returns the effective keep-alive period; zero means disabled.
func (c *Config) KeepAlive() time.Duration {
	if c.KeepAlivePeriod < 0 {
		return 0
	}
	return orDefault(c.KeepAlivePeriod, DefaultKeepAlivePeriod)
}

// IncomingStreams returns the effective bidirectional stream limit granted to the peer.
func (c *Config) IncomingStreams() int64 {
	if c.MaxIncomingStreams < 0 {
		return 0
	}
	return c.MaxIncomingStreams
}

// IncomingUniStreams returns the effective unidirectional stream limit granted to the peer.
func (c *Config) IncomingUniStreams() int64 {
	if c.MaxIncomingUniStreams < 0 {
		return 0
	}
	return orDefault(c.MaxIncomingUniStreams, DefaultMaxIncomingUniStreams)
}

// StreamWindow returns the effective stream receive window cap.
func (c *Config) StreamWindow() uint64 {
	return orDefault(c.MaxStreamReceiveWindow, DefaultMaxStreamReceiveWindow)
}

// ConnectionWindow returns the effective connection receive window cap.
func (c *Config) ConnectionWindow() uint64 {
	return orDefault(c.MaxConnectionReceiveWindow, DefaultMaxConnectionReceiveWindow)
}

// AcceptQueue returns the effective accept queue length.
func (c *Config) AcceptQueue() int {
	return orDefault(c.AcceptQueueLength, 128)
}
