// Package qmux implements the session interface (internal/session) with QMux
// (draft-ietf-quic-qmux-02): QUIC's stream layer — streams, flow control, stream limits,
// resets, close — carried in records over TLS 1.3 over TCP, for networks where UDP is
// blocked. The codec is in internal/qmux/wire; docs/qmux.md describes the design.
//
// TLS uses the same credentials, trust policy and verification as the QUIC core
// (certs.TrustPolicy.VerifyConnection: trust, then a negotiated ALPN). The application's
// ALPN is mapped to its QMux ALPN (see ALPN). Dial returns once our handshake is complete
// and the listener's QX_TRANSPORT_PARAMETERS arrived, as the draft requires before opening
// streams. A listener may still refuse the dialer after that: with a certificate alert (the
// connection's cause is then a *certs.RejectedByPeerError) or, after Incoming.Reject, with
// CONNECTION_CLOSE and the application code session.CodeRejected (the cause matches
// session.ErrRejected). Dial returns those errors itself when the refusal came first.
//
// A listener whose session.Config has DialEarly sends its QX_TRANSPORT_PARAMETERS at
// 0.5-RTT, right after its TLS Finished (halfrtt.go): its dialers' Dial then returns at the
// end of their own handshake, a round trip sooner.
//
// The connection's code is split by concern: conn.go (struct, construction, goroutines),
// conn_recv.go (reading and handling frames), conn_send.go (building and writing records),
// conn_flow.go (flow control), conn_streams.go (streams and stream limits), idle.go (idle
// timeout, keep-alive, QX_PING), conn_close.go (closing), stream*.go (a stream's halves).
package qmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// ALPNSuffix is appended to an application's ALPN to name the application over QMux. It
// carries the draft's wire version, as the draft asks of protocols using a draft version
// ("h3" → "h3qx-01" in deployed stacks; -01 and -02 share the wire format, peerwire names
// the draft it implements).
const ALPNSuffix = "qx-02"

// ALPN maps an application protocol to its QMux ALPN identifier: app + ALPNSuffix, e.g.
// "peerwire/1" → "peerwire/1qx-02". It must differ from the QUIC identifier (draft §8.1).
func ALPN(app string) string { return app + ALPNSuffix }

// AppALPN maps a QMux ALPN identifier back to the application's.
func AppALPN(qmux string) string { return strings.TrimSuffix(qmux, ALPNSuffix) }

func mapALPN(apps []string) ([]string, error) {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = ALPN(a)
		if len(out[i]) > 255 {
			return nil, fmt.Errorf("peerwire: ALPN %q too long for QMux (at most %d bytes)", a, 255-len(ALPNSuffix))
		}
	}
	return out, nil
}

// Core is the QMux implementation of session.Core.
type Core struct {
	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	wg     sync.WaitGroup
	// testHooks observe what production code does not report; nil in production.
	testHooks *testHooks
}

// testHooks record, for tests, events that have no other observable trace. Set on a Core
// before Listen.
type testHooks struct {
	halfRTTInjected    atomic.Int32 // records sent at 0.5-RTT (R0)
	halfRTTResequenced atomic.Int32 // records sealed again one sequence number later
}

var _ session.Core = (*Core)(nil)

// New returns a QMux core.
func New() *Core { return &Core{conns: make(map[*conn]struct{})} }

// Name implements session.Core.
func (c *Core) Name() string { return "qmux" }

// Close closes every connection the core dialed or accepted and waits for their goroutines.
func (c *Core) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := make([]*conn, 0, len(c.conns))
	for cn := range c.conns {
		conns = append(conns, cn)
	}
	c.mu.Unlock()
	for _, cn := range conns {
		_ = cn.CloseWithError(session.CodeShutdown, "shutting down")
	}
	c.wg.Wait()
	return nil
}

// track registers a connection so Close can end it; the core waits for its goroutines.
func (c *Core) track(cn *conn) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = cn.CloseWithError(session.CodeShutdown, "shutting down")
		return net.ErrClosed
	}
	c.conns[cn] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	cn.whenEnded(func() {
		c.mu.Lock()
		delete(c.conns, cn)
		c.mu.Unlock()
		c.wg.Done()
	})
	return nil
}

// verifying returns a TLS config whose verification records the peer (or our rejection of
// it, with its address) in v.
func verifying(base *tls.Config, cfg *session.Config, v *verified, remote net.Addr) *tls.Config {
	tc := base.Clone()
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		peer, err := cfg.Trust.VerifyConnection(cs, remote)
		v.peer, v.err = peer, err
		return err
	}
	// A listener refuses a dialer that offers protocols, none of them ours, before
	// VerifyConnection runs, with an error of crypto/tls's own; the ClientHello says so first,
	// so the refusal is reported as the ALPN failure it is. (A dialer that offers none is
	// refused by VerifyConnection.) A dialer's config never calls GetConfigForClient.
	tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if len(hello.SupportedProtos) > 0 && !slices.ContainsFunc(hello.SupportedProtos, func(p string) bool {
			return slices.Contains(tc.NextProtos, p)
		}) {
			v.err = certs.ErrNoApplicationProtocol
		}
		return nil, nil
	}
	return tc
}

type verified struct {
	peer *certs.PeerCertificate
	err  error
}

// Dial implements session.Core: TCP, TLS 1.3 with mutual verification, then QMux; it
// returns once the listener's transport parameters arrived (bounded by the handshake
// timeout).
func (c *Core) Dial(ctx context.Context, addr string, cfg *session.Config) (session.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	alpn, err := mapALPN(cfg.ALPN)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.Handshake())
	defer cancel()
	var d net.Dialer
	tcp, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("qmux dial %s: %w", addr, err)
	}
	raddr := tcp.RemoteAddr()
	v := &verified{}
	tc := tls.Client(tcp, verifying(certs.ClientConfig(cfg.Credential, cfg.Trust, alpn), cfg, v, raddr))
	began := time.Now()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = tcp.Close()
		return nil, handshakeError(ctx, hctx, err, v, raddr, cfg)
	}
	cn := c.start(tc, true, cfg, v)
	cn.seedRTT(time.Since(began))
	if err := c.track(cn); err != nil {
		return nil, err
	}
	err = cn.waitParams(hctx)
	if err == nil {
		// The listener's refusal may have come with its parameters (Reject sends both in one
		// record).
		err = refusal(context.Cause(cn.ctx))
	}
	if err != nil {
		_ = cn.CloseWithError(session.CodeShutdown, "dial abandoned")
		switch r := refusal(err); {
		case r == session.ErrRejected:
			return nil, fmt.Errorf("qmux %s: %w", raddr, r)
		case r != nil:
			return nil, r
		}
		return nil, handshakeError(ctx, hctx, err, v, raddr, cfg)
	}
	return cn, nil
}

// refusal returns the listener's refusal of us that err carries, or nil: a
// *certs.RejectedByPeerError, or session.ErrRejected.
func refusal(err error) error {
	if rbp, ok := errors.AsType[*certs.RejectedByPeerError](err); ok {
		return rbp
	}
	if errors.Is(err, session.ErrRejected) {
		return session.ErrRejected
	}
	return nil
}

func (c *Core) start(tc *tls.Conn, client bool, cfg *session.Config, v *verified) *conn {
	cs := tc.ConnectionState()
	return newConn(tc, client, cfg, session.State{
		LocalAddr:  tc.LocalAddr(),
		RemoteAddr: tc.RemoteAddr(),
		ALPN:       AppALPN(cs.NegotiatedProtocol),
		Peer:       v.peer,
		TLS:        cs,
	})
}

// handshakeError explains a failed handshake: our refusal of the peer, the peer's refusal
// of us (a certificate alert), no common ALPN, or a timeout.
func handshakeError(ctx, hctx context.Context, err error, v *verified, raddr net.Addr, cfg *session.Config) error {
	if v.err != nil {
		if errors.Is(v.err, certs.ErrNoApplicationProtocol) {
			return &session.ALPNError{Offered: cfg.ALPN, PeerAddr: raddr}
		}
		return v.err
	}
	var ce *session.CloseError
	if errors.As(err, &ce) && ce.Err != nil {
		err = ce.Err
	}
	if alert, ok := certs.PeerAlert(err); ok {
		switch {
		case certs.IsCertificateAlert(alert):
			return certs.NewRejectedByPeerError(cfg.Credential, raddr, alert, err)
		case alert == 120: // no_application_protocol
			return &session.ALPNError{Offered: cfg.ALPN, PeerAddr: raddr}
		}
	}
	if errors.Is(err, certs.ErrNoApplicationProtocol) {
		return &session.ALPNError{Offered: cfg.ALPN, PeerAddr: raddr}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("qmux %s: %w", raddr, ctx.Err())
	}
	if hctx.Err() != nil {
		return fmt.Errorf("qmux %s: %w", raddr, &session.TimeoutError{Op: "handshake", After: cfg.Handshake()})
	}
	return fmt.Errorf("qmux %s: handshake: %w", raddr, err)
}

// Listen implements session.Core.
func (c *Core) Listen(addr string, cfg *session.Config) (session.Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	alpn, err := mapALPN(cfg.ALPN)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("qmux listen %s: %w", addr, err)
	}
	l := &listener{
		core:       c,
		ln:         ln,
		cfg:        cfg,
		tls:        certs.ServerConfig(cfg.Credential, cfg.Trust, alpn),
		halfRTT:    halfRTTRecord(cfg),
		queue:      make(chan *incoming, cfg.AcceptQueue()),
		done:       make(chan struct{}),
		acceptDone: make(chan struct{}),
	}
	go l.acceptLoop()
	return l, nil
}

type listener struct {
	core  *Core
	ln    net.Listener
	cfg   *session.Config
	tls   *tls.Config
	queue chan *incoming
	// halfRTT is the record sent at 0.5-RTT (the conns' first record), nil without DialEarly.
	halfRTT []byte

	once       sync.Once
	done       chan struct{}
	acceptDone chan struct{}
	mu         sync.Mutex
	closing    bool           // Close is waiting for the refusals: no new ones start
	wg         sync.WaitGroup // refusals in progress
}

func (l *listener) acceptLoop() {
	defer close(l.acceptDone)
	for {
		tcp, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: back off
			continue
		}
		in := &incoming{l: l, tcp: tcp}
		// An attempt nobody accepts within the handshake timeout is refused. The timer is
		// set under in.mu, which decide (run by the timer's own callback) holds to read it.
		in.mu.Lock()
		in.timer = time.AfterFunc(l.cfg.Handshake(), func() { _ = in.Reject() })
		in.mu.Unlock()
		select {
		case l.queue <- in:
		default:
			in.timer.Stop()
			_ = in.Reject()
		}
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

func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops listening and refuses queued attempts; accepted connections stay open.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		_ = l.ln.Close()
		<-l.acceptDone
		for {
			select {
			case in := <-l.queue:
				_ = in.Reject()
				continue
			default:
			}
			break
		}
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
	})
	l.wg.Wait()
	return nil
}

type incoming struct {
	l     *listener
	tcp   net.Conn
	timer *time.Timer

	mu      sync.Mutex
	decided bool
}

func (in *incoming) RemoteAddr() net.Addr { return in.tcp.RemoteAddr() }

func (in *incoming) decide() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.decided {
		return false
	}
	in.decided = true
	in.timer.Stop()
	return true
}

// Accept runs the server's TLS handshake (verifying the dialer), starts QMux and waits for
// the dialer's transport parameters. With DialEarly our parameters go out at 0.5-RTT, with
// the handshake's first flight.
func (in *incoming) Accept(ctx context.Context) (session.Conn, error) {
	if !in.decide() {
		return nil, session.ErrRejected
	}
	l, cfg := in.l, in.l.cfg
	hctx, cancel := context.WithTimeout(ctx, cfg.Handshake())
	defer cancel()
	raddr := in.tcp.RemoteAddr()
	v := &verified{}
	tcfg := verifying(l.tls, cfg, v, raddr)
	nc := in.tcp
	if l.halfRTT != nil {
		nc = withHalfRTTParams(nc, tcfg, l.halfRTT, l.core.testHooks)
	}
	tc := tls.Server(nc, tcfg)
	began := time.Now()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = in.tcp.Close()
		return nil, handshakeError(ctx, hctx, err, v, raddr, cfg)
	}
	cn := l.core.start(tc, false, cfg, v)
	cn.seedRTT(time.Since(began))
	if err := l.core.track(cn); err != nil {
		return nil, err
	}
	if err := cn.waitParams(hctx); err != nil {
		_ = cn.CloseWithError(session.CodeShutdown, "handshake incomplete")
		return nil, handshakeError(ctx, hctx, err, v, raddr, cfg)
	}
	return cn, nil
}

// Reject refuses the attempt, in the background: the TLS handshake completes (our trust
// checks still run, and a dialer we do not trust gets a certificate alert), then the
// connection closes with session.CodeRejected, which the dialer reports as
// session.ErrRejected. It is bounded by the handshake timeout and closeLinger.
func (in *incoming) Reject() error {
	if !in.decide() {
		return nil
	}
	l := in.l
	// Add to the WaitGroup only while Close is not waiting on it (a refusal can come from
	// the handshake timer at any time).
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return in.tcp.Close()
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		l.refuse(in.tcp)
	}()
	return nil
}

// refuse runs the server's handshake on tcp, then closes the QMux connection with
// session.CodeRejected: one record carrying our transport parameters (the first frame, as
// the draft requires) and the CONNECTION_CLOSE, so that a dialer sees the refusal as soon as
// it has the parameters. Then the close procedure of the draft: half-close, and discard what
// arrives until the dialer's half-close, at most closeLinger.
func (l *listener) refuse(tcp net.Conn) {
	defer tcp.Close()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Handshake())
	defer cancel()
	tc := tls.Server(tcp, verifying(l.tls, l.cfg, &verified{}, tcp.RemoteAddr()))
	if err := tc.HandshakeContext(ctx); err != nil {
		return
	}
	rec, start := wire.BeginRecord(nil, 2)
	rec = (&wire.TransportParametersFrame{Params: localParams(l.cfg)}).Append(rec)
	rec = (&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: uint64(session.CodeRejected), Reason: []byte("rejected")}).Append(rec)
	rec = wire.EndRecord(rec, start)
	_ = tcp.SetDeadline(time.Now().Add(closeLinger))
	if _, err := tc.Write(rec); err != nil {
		return
	}
	_ = tc.CloseWrite()
	if cw, ok := tcp.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, tc)
}
