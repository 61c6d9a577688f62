// Package quicsession implements the session interface (internal/session) over QUIC with
// quic-go: mutual TLS 1.3 with verification in peerwire's code (certs.TrustPolicy's
// VerifyConnection: trust, then a negotiated ALPN), incoming connection attempts surfaced at
// the ClientHello with their own accept/reject, and, when asked for
// (Config.TrackStreamCapacity), stream-capacity notifications.
//
// Dial returns once our own TLS handshake is complete. In TLS 1.3 that is before the listener
// has checked our certificate, so a refusal can arrive after Dial returned: the listener's
// certificate alert (CRYPTO_ERROR 0x100+alert) or its application's rejection (an application
// close with session.CodeRejected). Either ends the connection, and context.Cause of its
// Context is then a *session.CloseError that also matches *certs.RejectedByPeerError
// (errors.As) or session.ErrRejected (errors.Is); a refusal that arrives before Dial returns
// is Dial's error. Whether the listener's application accepted us is told above this layer
// (nettransport's ACCEPTED message).
//
// A failed ALPN negotiation is a *session.ALPNError in both roles: crypto/tls in QUIC mode
// refuses it with the no_application_protocol alert (RFC 9001 §8.1), which either side may
// send.
package quicsession

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/session"
)

// Core is the QUIC implementation of session.Core. The zero value is not usable; use New.
//
// A dial leaves from the socket of one of the core's listeners when one can reach the
// destination, as go-libp2p does: the peer sees the address it can dial back, a NAT maps one
// port for both directions, and a node holds one socket (one reader goroutine, one set of
// receive buffers) instead of two. Otherwise it leaves from a socket shared by every such
// dial, opened on first use.
type Core struct {
	mu        sync.Mutex
	dialTr    *quic.Transport // the shared dial socket, created on first use
	listeners []*listener     // open listeners, whose sockets dials may leave from
	closed    bool
	routes    routes
}

var _ session.Core = (*Core)(nil)

// New returns a QUIC core.
func New() *Core { return &Core{} }

// Name implements session.Core.
func (c *Core) Name() string { return "quic" }

// Close closes the shared dial socket, and with it every connection dialed from it.
// Connections dialed from a listener's socket keep that socket open until they close, like
// the connections the listener accepted.
func (c *Core) Close() error {
	c.mu.Lock()
	tr := c.dialTr
	c.dialTr, c.closed = nil, true
	c.mu.Unlock()
	if tr != nil {
		return closeTransport(tr)
	}
	return nil
}

func closeTransport(tr *quic.Transport) error {
	err := tr.Close()
	if cerr := tr.Conn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// dialSocket picks the socket a dial to raddr leaves from: a listener's socket bound to raddr
// itself or to the address the kernel routes raddr from (loopback to loopback needs no
// lookup), else a wildcard listener's socket of a family that can reach raddr, else the shared
// dial socket. release, when not nil, is called once the dialed
// connection (or the failed dial) no longer needs the listener's socket.
func (c *Core) dialSocket(raddr *net.UDPAddr) (tr *quic.Transport, release func(), err error) {
	c.mu.Lock()
	ls := slices.Clone(c.listeners)
	c.mu.Unlock()
	var src net.IP
	var wildcard *listener
	for _, l := range ls {
		switch {
		case l.bound == nil:
			if wildcard == nil && l.family.reaches(raddr.IP) {
				wildcard = l
			}
		case l.bound.Equal(raddr.IP) || l.bound.IsLoopback() && raddr.IP.IsLoopback() && l.family.reaches(raddr.IP):
			// Our own address, or loopback to loopback: no route to look up.
			if l.sock.acquire() {
				return l.tr, l.sock.release, nil
			}
		default:
			if src == nil {
				if src = c.routes.source(raddr); src == nil {
					continue
				}
			}
			if l.bound.Equal(src) && l.sock.acquire() {
				return l.tr, l.sock.release, nil
			}
		}
	}
	if wildcard != nil && wildcard.sock.acquire() {
		return wildcard.tr, wildcard.sock.release, nil
	}
	tr, err = c.dialTransport()
	return tr, nil, err
}

func (c *Core) addListener(l *listener) {
	c.mu.Lock()
	c.listeners = append(c.listeners, l)
	c.mu.Unlock()
}

func (c *Core) removeListener(l *listener) {
	c.mu.Lock()
	c.listeners = slices.DeleteFunc(c.listeners, func(x *listener) bool { return x == l })
	c.mu.Unlock()
}

// family is which destinations a listener's socket can send to.
type family uint8

const (
	dualStack family = iota // "[::]" without IPV6_V6ONLY: IPv4 and IPv6
	ipv4Only                // "0.0.0.0" on an AF_INET socket
	ipv6Only                // "[::]" with IPV6_V6ONLY
)

func (f family) reaches(ip net.IP) bool {
	switch f {
	case ipv4Only:
		return ip.To4() != nil
	case ipv6Only:
		return ip.To4() == nil
	}
	return true
}

func (c *Core) dialTransport() (*quic.Transport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.dialTr == nil {
		udp, err := net.ListenUDP("udp", nil)
		if err != nil {
			return nil, err
		}
		c.dialTr = &quic.Transport{Conn: udp}
	}
	return c.dialTr, nil
}

// quicConfig maps the session config onto quic-go's.
func quicConfig(cfg *session.Config) *quic.Config {
	qc := &quic.Config{
		HandshakeIdleTimeout:       cfg.Handshake(),
		MaxIdleTimeout:             cfg.Idle(),
		KeepAlivePeriod:            cfg.KeepAlive(),
		MaxStreamReceiveWindow:     cfg.StreamWindow(),
		MaxConnectionReceiveWindow: cfg.ConnectionWindow(),
		MaxIncomingStreams:         cfg.IncomingStreams(),
		MaxIncomingUniStreams:      cfg.IncomingUniStreams(),
	}
	if qc.MaxIdleTimeout == 0 {
		// quic-go cannot switch the idle timeout off; a year is off in practice.
		qc.MaxIdleTimeout = 365 * 24 * time.Hour
	}
	// quic-go reads zero as "its default of 100" and negative as "none".
	if qc.MaxIncomingStreams == 0 {
		qc.MaxIncomingStreams = -1
	}
	if qc.MaxIncomingUniStreams == 0 {
		qc.MaxIncomingUniStreams = -1
	}
	return qc
}

// verifying returns a copy of base whose certificate verification records its outcome (with
// the peer's address filled into a rejection) in hs.
func verifying(base *tls.Config, cfg *session.Config, hs *handshake, remote net.Addr) *tls.Config {
	tc := base.Clone()
	tc.GetConfigForClient = nil
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		peer, err := cfg.Trust.VerifyConnection(cs, remote)
		if errors.Is(err, certs.ErrNoApplicationProtocol) {
			err = &session.ALPNError{Offered: cfg.ALPN, PeerAddr: remote}
		}
		hs.setVerified(peer, err)
		return err
	}
	return tc
}

// Dial implements session.Core. It returns once our TLS handshake is complete (see the package
// doc for a refusal that arrives later). A refusal it sees comes back as a
// *certs.RejectedByPeerError (the listener refused our certificate), session.ErrRejected (the
// listener's application refused us), a *session.ALPNError, or, when we refused the
// listener, a *certs.RejectError.
func (c *Core) Dial(ctx context.Context, addr string, cfg *session.Config) (session.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quic dial %s: %w", addr, err)
	}
	tr, release, err := c.dialSocket(raddr)
	if err != nil {
		return nil, fmt.Errorf("quic dial %s: %w", addr, err)
	}
	conn, err := c.dial(ctx, tr, raddr, cfg, release)
	if err != nil && release != nil {
		release()
	}
	return conn, err
}

// dial runs one dial from tr; release is handed to the connection on success.
func (c *Core) dial(ctx context.Context, tr *quic.Transport, raddr *net.UDPAddr, cfg *session.Config, release func()) (session.Conn, error) {
	hs := &handshake{}
	tlsConf := verifying(certs.ClientConfig(cfg.Credential, cfg.Trust, cfg.ALPN), cfg, hs, raddr)
	qconf := quicConfig(cfg)
	var caps *capacityTrace
	if cfg.TrackStreamCapacity {
		caps = &capacityTrace{}
		qconf.Tracer = func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace { return caps }
	}

	hctx, cancel := context.WithTimeout(ctx, cfg.Handshake())
	defer cancel()
	qc, err := tr.Dial(hctx, raddr, tlsConf, qconf)
	if err != nil {
		return nil, dialError(ctx, hctx, err, hs, raddr, cfg)
	}
	if qc.Context().Err() != nil { // refused (or closed) while quic-go returned the dial
		return nil, dialError(ctx, hctx, context.Cause(qc.Context()), hs, raddr, cfg)
	}
	conn := newConn(qc, hs, caps, release, func(err error) error { return refusal(err, raddr, cfg) })
	conn.state.LocalAddr = c.routes.localAddr(conn.state.LocalAddr, raddr)
	return conn.session(), nil
}

// dialError explains a failed dial: which side refused which certificate, no common ALPN, a
// handshake timeout, the application's rejection, or the transport's error.
func dialError(ctx, hctx context.Context, err error, hs *handshake, raddr net.Addr, cfg *session.Config) error {
	if _, rej := hs.verified(); rej != nil {
		return rej
	}
	if e := refusal(err, raddr, cfg); e != nil {
		return e
	}
	if ctx.Err() != nil {
		return fmt.Errorf("quic dial %s: %w", raddr, ctx.Err())
	}
	if hctx.Err() != nil {
		return fmt.Errorf("quic dial %s: %w", raddr, &session.TimeoutError{Op: "handshake", After: cfg.Handshake()})
	}
	return fmt.Errorf("quic dial %s: %w", raddr, translate(err))
}

const (
	// cryptoErrorBase is QUIC's CRYPTO_ERROR range: 0x100 + a TLS alert (RFC 9001 §4.8).
	cryptoErrorBase = 0x100
	// alertNoApplicationProtocol is TLS's no_application_protocol alert (RFC 7301 §3.2).
	alertNoApplicationProtocol = 120
)

// refusal recognises, in the error that ended a connection, a refusal that has a type of its
// own: the peer's certificate alert in a QUIC CRYPTO_ERROR (0x100 + alert) as a
// *certs.RejectedByPeerError; a no_application_protocol alert from either side as a
// *session.ALPNError. It returns nil for anything else (the peer application's close with
// session.CodeRejected needs nothing: its *session.CloseError matches session.ErrRejected).
func refusal(err error, raddr net.Addr, cfg *session.Config) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		alert := uint8(te.ErrorCode - cryptoErrorBase)
		switch {
		case alert == alertNoApplicationProtocol:
			return &session.ALPNError{Offered: cfg.ALPN, PeerAddr: raddr}
		case te.Remote && certs.IsCertificateAlert(alert):
			return certs.NewRejectedByPeerError(cfg.Credential, raddr, alert, err)
		}
	}
	return nil
}

// Listen implements session.Core.
func (c *Core) Listen(addr string, cfg *session.Config) (session.Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quic listen %s: %w", addr, err)
	}
	network := "udp"
	if cfg.SingleStack && laddr.IP != nil {
		network = "udp6"
		if laddr.IP.To4() != nil {
			network = "udp4"
		}
	}
	udp, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, fmt.Errorf("quic listen %s: %w", addr, err)
	}
	l := &listener{
		core:  c,
		cfg:   cfg,
		queue: make(chan *incoming, cfg.AcceptQueue()),
		done:  make(chan struct{}),
	}
	switch bound := udp.LocalAddr().(*net.UDPAddr).IP; {
	case !bound.IsUnspecified():
		l.bound, l.family = bound, ipv6Only
		if ip4 := bound.To4(); ip4 != nil {
			l.bound, l.family = ip4, ipv4Only
		}
	case network == "udp4" || bound.To4() != nil:
		l.family = ipv4Only
	case network == "udp6":
		l.family = ipv6Only
	}
	l.tr = &quic.Transport{Conn: udp, ConnContext: l.connContext}
	l.sock.fn = func() { _ = closeTransport(l.tr) }
	l.baseTLS = certs.ServerConfig(cfg.Credential, cfg.Trust, cfg.ALPN)
	tlsConf := l.baseTLS.Clone()
	tlsConf.GetConfigForClient = l.configForClient
	qconf := quicConfig(cfg)
	if cfg.TrackStreamCapacity {
		qconf.Tracer = func(ctx context.Context, _ bool, _ quic.ConnectionID) qlogwriter.Trace {
			if in, ok := ctx.Value(incomingKey{}).(*incoming); ok && in.caps != nil {
				return in.caps
			}
			return nil // no tracing at all
		}
	}
	l.ln, err = l.tr.Listen(tlsConf, qconf)
	if err != nil {
		_ = closeTransport(l.tr)
		return nil, fmt.Errorf("quic listen %s: %w", addr, err)
	}
	l.wg.Add(1)
	go l.acceptLoop()
	c.addListener(l)
	return l, nil
}

type incomingKey struct{}

type listener struct {
	core    *Core
	cfg     *session.Config
	bound   net.IP // the socket's address (IPv4 in 4-byte form); nil for a wildcard socket
	family  family // the destinations the socket can send to
	tr      *quic.Transport
	ln      *quic.Listener
	baseTLS *tls.Config
	queue   chan *incoming
	sock    refCount // the UDP socket lives while the listener or a conn using it does

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// connContext runs when a client's first packet arrives: the attempt becomes an Incoming in
// the accept queue, or is refused when the queue is full.
func (l *listener) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	in := &incoming{l: l, remote: info.RemoteAddr, hs: &handshake{}, handshake: make(chan *quic.Conn, 1), decided: make(chan struct{})}
	if l.cfg.TrackStreamCapacity {
		in.caps = &capacityTrace{}
	}
	ctx = context.WithValue(ctx, incomingKey{}, in)
	in.qctx = ctx
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case l.queue <- in:
		return ctx, nil
	default:
		return nil, errors.New("accept queue full")
	}
}

func (l *listener) configForClient(chi *tls.ClientHelloInfo) (*tls.Config, error) {
	in, ok := chi.Context().Value(incomingKey{}).(*incoming)
	if !ok {
		return nil, errors.New("peerwire: connection without state")
	}
	// Like the original (MsQuic), the handshake proceeds once the application decided. It
	// proceeds after a Reject too (our trust checks still run): the completed connection is
	// then closed with session.CodeRejected, which QUIC carries only once the handshake is
	// complete (before, an application close becomes a bare APPLICATION_ERROR, RFC 9000
	// §10.2.3), and a TLS alert is no signal for an application's decision.
	timer := time.NewTimer(l.cfg.Handshake())
	defer timer.Stop()
	select {
	case <-in.decided:
	case <-timer.C:
		in.abandon() // not accepted in time: rejected
	case <-l.done:
		return nil, net.ErrClosed
	case <-chi.Context().Done():
		return nil, chi.Context().Err()
	}
	return verifying(l.baseTLS, l.cfg, in.hs, in.remote), nil
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		qc, err := l.ln.Accept(context.Background())
		if err != nil {
			return
		}
		in, ok := qc.Context().Value(incomingKey{}).(*incoming)
		if !ok {
			_ = qc.CloseWithError(quic.ApplicationErrorCode(session.CodeShutdown), "")
			continue
		}
		in.deliver(qc)
	}
}

func (l *listener) Accept(ctx context.Context) (session.Incoming, error) {
	select {
	case in := <-l.queue:
		return in, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *listener) Addr() net.Addr { return l.tr.Conn.LocalAddr() }

// Close stops accepting and fails attempts still queued; accepted connections, and those
// dialed from the listener's socket, stay open and keep the socket until the last of them
// closes.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.core.removeListener(l)
		close(l.done)
		_ = l.ln.Close()
		l.wg.Wait()
		for {
			select {
			case in := <-l.queue:
				in.abandon()
				continue
			default:
			}
			break
		}
		l.sock.shutdown()
	})
	return nil
}

// incoming is a connection attempt from its first packet to Accept or Reject.
type incoming struct {
	l         *listener
	remote    net.Addr
	hs        *handshake
	caps      *capacityTrace  // nil unless the listener tracks stream capacity
	qctx      context.Context // quic-go's context for the attempt; ends when it fails or closes
	handshake chan *quic.Conn // the connection once the handshake completed

	decided chan struct{} // closed when the application accepted or rejected

	mu       sync.Mutex
	rejected bool
	taken    bool
}

// decide records the application's decision once. Called with in.mu held.
func (in *incoming) decide(reject bool) {
	select {
	case <-in.decided:
		return
	default:
	}
	in.rejected = reject
	close(in.decided)
}

func (in *incoming) RemoteAddr() net.Addr { return in.remote }

// Accept lets the handshake proceed and waits for it, including the certificate checks of
// both sides. A cancelled ctx abandons the attempt.
func (in *incoming) Accept(ctx context.Context) (session.Conn, error) {
	in.mu.Lock()
	if in.rejected || in.taken {
		in.mu.Unlock()
		return nil, session.ErrRejected
	}
	in.taken = true
	in.decide(false)
	in.mu.Unlock()
	select {
	case qc := <-in.handshake:
		if !in.l.sock.acquire() {
			_ = qc.CloseWithError(quic.ApplicationErrorCode(session.CodeShutdown), "listener closed")
			return nil, net.ErrClosed
		}
		return newConn(qc, in.hs, in.caps, in.l.sock.release, nil).session(), nil
	case <-in.qctx.Done():
		if _, rej := in.hs.verified(); rej != nil {
			return nil, rej
		}
		cause := context.Cause(in.qctx)
		if e := refusal(cause, in.remote, in.l.cfg); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("quic accept from %s: %w", in.remote, translate(cause))
	case <-ctx.Done():
		in.abandon()
		return nil, ctx.Err()
	}
}

// Reject refuses the attempt: the handshake completes (with our checks of the dialer's
// certificate), then the connection is closed with session.CodeRejected, which the dialer
// reports as session.ErrRejected.
func (in *incoming) Reject() error {
	in.abandon()
	return nil
}

// abandon refuses the attempt: a completed handshake waiting in the channel is closed now
// with session.CodeRejected; one still in progress is closed so by deliver once complete.
func (in *incoming) abandon() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rejected = true
	in.decide(true)
	select {
	case qc := <-in.handshake:
		_ = qc.CloseWithError(quic.ApplicationErrorCode(session.CodeRejected), "rejected")
	default:
	}
}

// deliver hands a completed handshake to Accept, or closes it if the attempt was refused.
func (in *incoming) deliver(qc *quic.Conn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rejected {
		_ = qc.CloseWithError(quic.ApplicationErrorCode(session.CodeRejected), "rejected")
		return
	}
	in.handshake <- qc // buffered (1) and delivered once
}

// routeCacheTTL bounds how long the source address the kernel picked for a destination is
// reused. Asking costs a socket of its own (tens of microseconds, on every dial otherwise);
// routes change rarely, but they do change (an interface goes down, a VPN comes up), so an
// answer is not kept for long.
const routeCacheTTL = 5 * time.Second

// routeCacheMax bounds the destinations remembered; the cache starts afresh when full.
const routeCacheMax = 256

// routes remembers, per destination, the source address the kernel routes it from.
type routes struct {
	mu sync.Mutex
	m  map[netip.Addr]route
}

type route struct {
	ip net.IP
	at time.Time
}

// localAddr replaces the unspecified IP of a wildcard socket ("[::]:port") with the source
// address the kernel routes raddr from, so LocalAddr names a real address.
func (r *routes) localAddr(local net.Addr, raddr *net.UDPAddr) net.Addr {
	la, ok := local.(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return local
	}
	ip := r.source(raddr)
	if ip == nil {
		return local
	}
	return &net.UDPAddr{IP: ip, Port: la.Port}
}

// source returns the address the kernel routes raddr from (IPv4 in its 4-byte form), or nil
// when there is no route. A connected UDP socket learns it without sending anything.
func (r *routes) source(raddr *net.UDPAddr) net.IP {
	dst, ok := netip.AddrFromSlice(raddr.IP)
	if !ok {
		return nil
	}
	dst = dst.Unmap().WithZone(raddr.Zone)
	now := time.Now()
	r.mu.Lock()
	rt, ok := r.m[dst]
	r.mu.Unlock()
	if ok && now.Sub(rt.at) < routeCacheTTL {
		return rt.ip
	}
	probe, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil
	}
	ip := probe.LocalAddr().(*net.UDPAddr).IP
	_ = probe.Close()
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	rt = route{ip: ip, at: now}
	r.mu.Lock()
	if r.m == nil || len(r.m) >= routeCacheMax {
		r.m = make(map[netip.Addr]route)
	}
	r.m[dst] = rt
	r.mu.Unlock()
	return rt.ip
}
