// Package libp2pquic is a go-libp2p transport over peerwire's QUIC core, wire-compatible with
// go-libp2p's own QUIC transport: QUIC v1, ALPN "libp2p", libp2p's TLS identity (the peer ID
// comes from the certificate's key extension), one bidirectional QUIC stream per libp2p
// stream, libp2p's stream and connection error codes, and addresses
// /ip4|ip6/<ip>/udp/<port>/quic-v1. Hosts using it and stock hosts connect to each other in
// both directions.
//
// # Usage
//
// The constructor's parameters are filled by go-libp2p:
//
//	h, err := libp2p.New(
//		libp2p.Identity(ed25519Key),
//		libp2p.Transport(libp2pquic.NewTransport),
//		libp2p.ListenAddrStrings("/ip4/0.0.0.0/udp/4001/quic-v1"),
//	)
//
// Passing any libp2p.Transport replaces go-libp2p's default transports, including its QUIC
// transport; this one takes its place. Both claim quic-v1, so they cannot be registered
// together.
//
// # Limitations
//
//   - The host key must be Ed25519 (go-libp2p's default); peers must have Ed25519 keys too.
//   - No private networks (libp2p.PrivateNetwork): NewTransport fails with ErrPrivateNetwork.
//   - Dials leave from one UDP socket of their own, not from the listening port: no UDP
//     hole punching (DCUtR), and peers observe a different port for outbound connections.
//   - No draft-29 QUIC, WebTransport or WebRTC on the same port.
//   - Flow-control window growth is not accounted to the resource manager's memory limits.
package libp2pquic

import (
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/pnet"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/internal/quicsession"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/nettransport/internal/p2ptransport"
)

// Errors returned by NewTransport.
var (
	// ErrPrivateNetwork: the host is configured for a private network (a pnet PSK).
	ErrPrivateNetwork = p2ptransport.ErrPrivateNetwork
	// ErrKeyType: the host key is not Ed25519.
	ErrKeyType = p2ptransport.ErrKeyType
)

// Option configures the transport.
type Option func(*p2ptransport.Settings) error

// WithHandshakeTimeout bounds the TLS handshake; the default is 10 s.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(s *p2ptransport.Settings) error { s.HandshakeTimeout = d; return nil }
}

// WithIdleTimeout closes a connection from which nothing arrived for d; the default is 30 s
// (keep-alives keep a live peer's connection open).
func WithIdleTimeout(d time.Duration) Option {
	return func(s *p2ptransport.Settings) error { s.IdleTimeout = d; return nil }
}

// WithKeepAlivePeriod sets how often a quiet connection sends a keep-alive; the default is
// 10 s, a negative value disables them.
func WithKeepAlivePeriod(d time.Duration) Option {
	return func(s *p2ptransport.Settings) error { s.KeepAlivePeriod = d; return nil }
}

// WithMaxIncomingStreams sets how many concurrent streams a peer may open; the default is
// 256, as go-libp2p's QUIC transport.
func WithMaxIncomingStreams(n int64) Option {
	return func(s *p2ptransport.Settings) error { s.MaxIncomingStreams = n; return nil }
}

// NewTransport returns a QUIC transport for the host key. gater may be nil; a nil rcmgr means
// no resource accounting. A non-empty psk fails with ErrPrivateNetwork, a key other than
// Ed25519 with ErrKeyType.
func NewTransport(key ic.PrivKey, psk pnet.PSK, gater connmgr.ConnectionGater, rcmgr network.ResourceManager, opts ...Option) (tpt.Transport, error) {
	var s p2ptransport.Settings
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	return p2ptransport.New(p2ptransport.Kind{
		Name:          "libp2pquic",
		NewCore:       func() session.Core { return quicsession.New() },
		UDP:           true,
		Protocol:      ma.P_QUIC_V1,
		ConnTransport: "quic-v1",
	}, key, psk, gater, rcmgr, s)
}
