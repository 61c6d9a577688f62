// Package p2ptransport turns a peerwire session core into a go-libp2p transport. It is written
// once against the session interface and serves both public transports: libp2pquic (the QUIC
// core) and libp2pqmux (the QMux core). A Kind says which core and which addresses.
//
// Security and multiplexing are the core's own: one TLS 1.3 handshake authenticates both
// sides with libp2p's certificate extension (the same certificates package certs makes for
// peerwire peers), and every libp2p stream is one bidirectional QUIC (or QMux) stream, as in
// go-libp2p's QUIC transport. The transport plays the parts go-libp2p's upgrader plays for
// TCP: the connection gater (InterceptAccept before the handshake, InterceptSecured after it)
// and the resource manager (a connection scope before the handshake, its peer once known).
package p2ptransport

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/sec"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	mafmt "github.com/multiformats/go-multiaddr-fmt"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/session"
)

// ALPN is the application protocol of libp2p over QUIC. The QMux core maps it to its own
// identifier (qmux.ALPN("libp2p")), so the two can never be confused on the wire.
const ALPN = "libp2p"

// DefaultMaxIncomingStreams is how many concurrent streams a peer may open when
// Settings.MaxIncomingStreams is zero: go-libp2p's QUIC transport grants 256.
const DefaultMaxIncomingStreams = 256

// certValidity is how long the transport's certificate is valid. The certificate and its TLS
// key are made when the transport is created and never leave memory, so they live no longer
// than the process; go-libp2p makes its certificates valid for about 100 years for the same
// reason, and a long-running host must not see its certificate expire under it.
const certValidity = 100 * 365 * 24 * time.Hour

// ErrPrivateNetwork is returned by the constructors when the host is configured with a
// private network key (libp2p.PrivateNetwork).
var ErrPrivateNetwork = errors.New("private networks (pnet pre-shared key) are not supported over peerwire transports; " +
	"use go-libp2p's TCP transport for a private network")

// ErrKeyType is returned by the constructors for a host key that is not Ed25519.
var ErrKeyType = errors.New("peerwire transports need an Ed25519 host key (peerwire certificates are signed by Ed25519 identity keys); " +
	"create the host with libp2p.Identity(<an Ed25519 crypto.PrivKey>)")

// Kind describes one core as a libp2p transport.
type Kind struct {
	// Name prefixes errors and is the transport's String: "libp2pquic", "libp2pqmux".
	Name string
	// NewCore makes the core; the transport owns it and closes it on Close.
	NewCore func() session.Core
	// UDP is true for a core over UDP (addresses /udp/<port>), false for one over TCP
	// (/tcp/<port>, and the resource manager is told that a connection uses a file
	// descriptor).
	UDP bool
	// Protocol is the multiaddr protocol after the port: ma.P_QUIC_V1 or the qmux code.
	Protocol int
	// ConnTransport is what ConnState reports as the transport: "quic-v1", "qmux".
	ConnTransport string
}

// Settings are the tunables the public packages expose as options. The zero value of each
// field means its default.
type Settings struct {
	// HandshakeTimeout bounds the TLS handshake. Zero means session.DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a silent connection. Zero means session.DefaultIdleTimeout.
	IdleTimeout time.Duration
	// KeepAlivePeriod sends keep-alives on a quiet connection. Zero means
	// session.DefaultKeepAlivePeriod.
	KeepAlivePeriod time.Duration
	// MaxIncomingStreams is how many concurrent streams the peer may open. Zero means
	// DefaultMaxIncomingStreams.
	MaxIncomingStreams int64
}

// Transport is a libp2p transport over one peerwire core. Create it with New.
type Transport struct {
	kind     Kind
	core     session.Core
	suffix   ma.Multiaddr // /quic-v1 or /qmux
	matcher  mafmt.Pattern
	cred     *certs.Credential
	local    peer.ID
	gater    connmgr.ConnectionGater // may be nil
	rcmgr    network.ResourceManager
	settings Settings

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
}

var (
	_ tpt.Transport = (*Transport)(nil)
	_ tpt.Listener  = (*listener)(nil)
)

// New makes a transport of the given kind for the host key. gater may be nil; a nil rcmgr
// means no resource accounting. A non-empty psk is refused (ErrPrivateNetwork): a private
// network wraps the raw connection in a pre-shared-key cipher before any handshake, which a
// transport with its own TLS cannot offer while staying wire-compatible.
func New(kind Kind, key ic.PrivKey, psk pnet.PSK, gater connmgr.ConnectionGater, rcmgr network.ResourceManager, s Settings) (*Transport, error) {
	if len(psk) > 0 {
		return nil, fmt.Errorf("%s: %w", kind.Name, ErrPrivateNetwork)
	}
	if key == nil {
		return nil, fmt.Errorf("%s: no host key", kind.Name)
	}
	if key.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%s: host key is %v: %w", kind.Name, key.Type(), ErrKeyType)
	}
	raw, err := key.Raw()
	if err != nil {
		return nil, fmt.Errorf("%s: reading host key: %w", kind.Name, err)
	}
	id, err := identity.NewPrivateKey(ed25519.PrivateKey(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind.Name, err)
	}
	cred, err := certs.NewCredential(id, certs.Options{Validity: certValidity})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind.Name, err)
	}
	local, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind.Name, err)
	}
	if rcmgr == nil {
		rcmgr = &network.NullResourceManager{}
	}
	if s.MaxIncomingStreams == 0 {
		s.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	suffix, err := ma.NewComponent(ma.ProtocolWithCode(kind.Protocol).Name, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind.Name, err)
	}
	port := mafmt.Base(ma.P_TCP)
	if kind.UDP {
		port = mafmt.Base(ma.P_UDP)
	}
	return &Transport{
		kind:      kind,
		core:      kind.NewCore(),
		suffix:    suffix.Multiaddr(),
		matcher:   mafmt.And(mafmt.IP, port, mafmt.Base(kind.Protocol)),
		cred:      cred,
		local:     local,
		gater:     gater,
		rcmgr:     rcmgr,
		settings:  s,
		listeners: make(map[*listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}, nil
}

// String names the transport.
func (t *Transport) String() string { return t.kind.Name }

// Protocols is the one protocol this transport handles: the multiaddr component after the
// port.
func (t *Transport) Protocols() []int { return []int{t.kind.Protocol} }

// Proxy is false.
func (t *Transport) Proxy() bool { return false }

// CanDial matches exactly /ip4|ip6/<ip>/udp/<port>/quic-v1 (QUIC) or
// /ip4|ip6/<ip>/tcp/<port>/qmux (QMux): the swarm takes the first transport that says yes, so
// DNS names (resolved by the swarm) and longer addresses are left to others.
func (t *Transport) CanDial(addr ma.Multiaddr) bool { return t.matcher.Matches(addr) }

// sessionConfig is the core configuration for one dial or listener.
func (t *Transport) sessionConfig(trust *certs.TrustPolicy) *session.Config {
	return &session.Config{
		Credential:            t.cred,
		Trust:                 trust,
		ALPN:                  []string{ALPN},
		HandshakeTimeout:      t.settings.HandshakeTimeout,
		IdleTimeout:           t.settings.IdleTimeout,
		KeepAlivePeriod:       t.settings.KeepAlivePeriod,
		MaxIncomingStreams:    t.settings.MaxIncomingStreams,
		MaxIncomingUniStreams: -1, // libp2p opens bidirectional streams only
		// As go-libp2p's QUIC transport: a dial returns once our handshake is complete, a
		// round trip before the listener confirms it. A listener that refuses us afterwards
		// (InterceptSecured, its resource manager) closes the connection with a libp2p code.
		DialEarly: true,
		// /ip4/0.0.0.0/udp/4001 and /ip6/::/udp/4001 are two listeners, as with go-libp2p.
		SingleStack: true,
	}
}

// hostPort checks addr and returns its "host:port".
func (t *Transport) hostPort(addr ma.Multiaddr) (string, error) {
	if !t.matcher.Matches(addr) {
		return "", fmt.Errorf("%s: unsupported address %s", t.kind.Name, addr)
	}
	_, hp, err := manet.DialArgs(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.kind.Name, err)
	}
	return hp, nil
}

// multiaddr is the multiaddr of a socket address of this transport's kind.
func (t *Transport) multiaddr(a net.Addr) (ma.Multiaddr, error) {
	m, err := manet.FromNetAddr(a)
	if err != nil {
		return nil, err
	}
	return m.Encapsulate(t.suffix), nil
}

// Dial connects to the peer p at raddr. The handshake trusts only p's key, so a peer with
// another key fails it, with sec.ErrPeerIDMismatch in the error chain (as with go-libp2p's
// TLS). The resource manager's connection scope is opened before the handshake and given the
// peer at once, since a dial knows it: a peer over its limit costs no handshake.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (tpt.CapableConn, error) {
	hp, err := t.hostPort(raddr)
	if err != nil {
		return nil, err
	}
	trust := &certs.TrustPolicy{AnyAuthenticated: true}
	if p != "" {
		want, err := identity.PeerIDFromLibp2p(p)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot dial %s: %w (peerwire transports connect only to peers with Ed25519 keys)", t.kind.Name, p, err)
		}
		trust = &certs.TrustPolicy{Keys: []identity.PublicKey{want.PublicKey()}}
	}
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, !t.kind.UDP, raddr)
	if err != nil {
		return nil, err
	}
	if p != "" {
		if err := scope.SetPeer(p); err != nil {
			scope.Done()
			return nil, err
		}
	}
	sc, err := t.core.Dial(ctx, hp, t.sessionConfig(trust))
	if err != nil {
		scope.Done()
		return nil, t.dialError(raddr, p, err)
	}
	return t.upgrade(sc, scope, network.DirOutbound, p, raddr)
}

// dialError names the transport and the address, and adds sec.ErrPeerIDMismatch to a
// rejection of a well-formed certificate with another key than the one we dialed.
func (t *Transport) dialError(raddr ma.Multiaddr, p peer.ID, err error) error {
	if re, ok := errors.AsType[*certs.RejectError](err); ok && p != "" && re.Reason == certs.ReasonKeysNotTrusted && len(re.PresentedKeys) > 0 {
		mismatch := sec.ErrPeerIDMismatch{Expected: p, Actual: re.PresentedKeys[0].PeerID().Libp2p()}
		return fmt.Errorf("%s dial %s: %w (%w)", t.kind.Name, raddr, mismatch, err)
	}
	return fmt.Errorf("%s dial %s: %w", t.kind.Name, raddr, err)
}

// upgrade turns a session connection both sides accepted into a libp2p connection: the peer
// ID check of a dial, the peer of an inbound connection's resource scope, the gater's
// InterceptSecured. It owns sc and scope: on failure it closes the one and ends the other.
func (t *Transport) upgrade(sc session.Conn, scope network.ConnManagementScope, dir network.Direction, expected peer.ID, remote ma.Multiaddr) (tpt.CapableConn, error) {
	fail := func(code network.ConnErrorCode, reason string, err error) (tpt.CapableConn, error) {
		_ = sc.CloseWithError(session.ApplicationErrorCode(code), reason)
		scope.Done()
		return nil, err
	}
	st := sc.State()
	if st.Peer == nil || len(st.Peer.Keys) == 0 {
		return fail(network.ConnProtocolNegotiationFailed, "no peer identity", fmt.Errorf("%s: connection without a peer identity", t.kind.Name))
	}
	local, err := t.multiaddr(st.LocalAddr)
	if err != nil {
		return fail(network.ConnProtocolNegotiationFailed, "", fmt.Errorf("%s: local address: %w", t.kind.Name, err))
	}
	c := &conn{
		sc:         sc,
		t:          t,
		scope:      scope,
		localPeer:  t.local,
		remotePeer: st.Peer.PeerID.Libp2p(),
		remoteKey:  st.Peer.Keys[0].Libp2p(),
		localAddr:  local,
		remoteAddr: remote,
	}
	switch {
	case expected != "" && c.remotePeer != expected:
		// The certificate passed the handshake because a co-signer key was the one we
		// trust; libp2p identifies a peer by the primary key only.
		return fail(network.ConnProtocolNegotiationFailed, "peer ID mismatch",
			fmt.Errorf("%s dial %s: %w", t.kind.Name, remote, sec.ErrPeerIDMismatch{Expected: expected, Actual: c.remotePeer}))
	case expected == "":
		if err := scope.SetPeer(c.remotePeer); err != nil {
			return fail(network.ConnResourceLimitExceeded, "", err)
		}
	}
	if t.gater != nil && !t.gater.InterceptSecured(dir, c.remotePeer, c) {
		return fail(network.ConnGated, "connection gated", fmt.Errorf("%s: secured connection with %s gated", t.kind.Name, c.remotePeer))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fail(network.ConnShutdown, "transport closed", fmt.Errorf("%s: %w", t.kind.Name, net.ErrClosed))
	}
	t.conns[c] = struct{}{}
	return c, nil
}

func (t *Transport) forget(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Listen listens on laddr (/ip4|ip6/<ip>/udp/<port>/quic-v1 or .../tcp/<port>/qmux).
func (t *Transport) Listen(laddr ma.Multiaddr) (tpt.Listener, error) {
	hp, err := t.hostPort(laddr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%s: %w", t.kind.Name, net.ErrClosed)
	}
	sl, err := t.core.Listen(hp, t.sessionConfig(&certs.TrustPolicy{AnyAuthenticated: true}))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.kind.Name, err)
	}
	addr, err := t.multiaddr(sl.Addr())
	if err != nil {
		_ = sl.Close()
		return nil, fmt.Errorf("%s: %w", t.kind.Name, err)
	}
	l := newListener(t, sl, addr)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = l.Close()
		return nil, fmt.Errorf("%s: %w", t.kind.Name, net.ErrClosed)
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	return l, nil
}

// Close closes the transport's listeners and connections and its core. The swarm calls it
// when the host closes.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	ls := make([]*listener, 0, len(t.listeners))
	for l := range t.listeners {
		ls = append(ls, l)
	}
	cs := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	for _, c := range cs {
		_ = c.CloseWithError(network.ConnShutdown)
	}
	return t.core.Close()
}
