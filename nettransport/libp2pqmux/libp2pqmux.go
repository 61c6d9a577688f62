// Package libp2pqmux is a go-libp2p transport over peerwire's QMux core: QUIC's stream layer
// (draft-ietf-quic-qmux-02) over TLS 1.3 over TCP, for networks where UDP is blocked. Its
// addresses are /ip4|ip6/<ip>/tcp/<port>/qmux; the qmux component is registered by package
// nettransport (nettransport.P_QMUX, 0x3f5153, in the multicodec private-use range), which
// this package imports.
//
// A connection costs one TCP handshake and one TLS 1.3 handshake, with libp2p's TLS identity
// (ALPN "libp2pqx-02", i.e. qmux.ALPN("libp2p")) and no multistream negotiation of a
// security protocol or a stream multiplexer. The listener sends its QMux transport
// parameters at 0.5-RTT, with its TLS Finished, so a dial returns, ready to open streams, as
// soon as the dialer's handshake is done: a connection with identify done takes 3 round
// trips where go-libp2p's TCP+TLS+yamux takes 4 (docs/libp2p.md). Streams, resets and close
// codes behave as on QUIC.
//
// # Usage
//
// QMux adds to go-libp2p's default transports (it claims no protocol they claim):
//
//	h, err := libp2p.New(
//		libp2p.Identity(ed25519Key),
//		libp2p.ChainOptions(libp2p.DefaultTransports, libp2p.Transport(libp2pqmux.NewTransport)),
//		libp2p.ListenAddrStrings("/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4002/qmux"),
//	)
//
// Both peers must speak QMux, and a peer parses /qmux addresses only if it registered the
// component (importing this package or nettransport does); stock peers ignore such addresses.
//
// # Limitations
//
//   - The host key must be Ed25519 (go-libp2p's default); peers must have Ed25519 keys too.
//   - No private networks (libp2p.PrivateNetwork): NewTransport fails with ErrPrivateNetwork.
//   - The QMux listener needs its own TCP port: it does not share one with go-libp2p's TCP
//     transport (libp2p.ShareTCPListener).
package libp2pqmux

import (
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/pnet"
	tpt "github.com/libp2p/go-libp2p/core/transport"

	"github.com/peerwire/peerwire/internal/qmux"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/nettransport"
	"github.com/peerwire/peerwire/nettransport/internal/p2ptransport"
)

// P_QMUX is the multiaddr protocol code of the qmux component.
const P_QMUX = nettransport.P_QMUX

// Errors returned by NewTransport.
var (
	// ErrPrivateNetwork: the host is configured for a private network (a pnet PSK).
	ErrPrivateNetwork = p2ptransport.ErrPrivateNetwork
	// ErrKeyType: the host key is not Ed25519.
	ErrKeyType = p2ptransport.ErrKeyType
)

// Option configures the transport.
type Option func(*p2ptransport.Settings) error

// WithHandshakeTimeout bounds the TCP and TLS handshakes; the default is 10 s.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(s *p2ptransport.Settings) error { s.HandshakeTimeout = d; return nil }
}

// WithIdleTimeout closes a connection from which nothing arrived for d; the default is 30 s
// (keep-alives keep a live peer's connection open).
func WithIdleTimeout(d time.Duration) Option {
	return func(s *p2ptransport.Settings) error { s.IdleTimeout = d; return nil }
}

// WithKeepAlivePeriod sets how often a quiet connection sends a keep-alive (QX_PING); the
// default is 10 s, a negative value disables them.
func WithKeepAlivePeriod(d time.Duration) Option {
	return func(s *p2ptransport.Settings) error { s.KeepAlivePeriod = d; return nil }
}

// WithMaxIncomingStreams sets how many concurrent streams a peer may open; the default is
// 256.
func WithMaxIncomingStreams(n int64) Option {
	return func(s *p2ptransport.Settings) error { s.MaxIncomingStreams = n; return nil }
}

// NewTransport returns a QMux transport for the host key. gater may be nil; a nil rcmgr means
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
		Name:          "libp2pqmux",
		NewCore:       func() session.Core { return qmux.New() },
		UDP:           false,
		Protocol:      P_QMUX,
		ConnTransport: "qmux",
	}, key, psk, gater, rcmgr, s)
}
