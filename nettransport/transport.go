package nettransport

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/qmux"
	"github.com/peerwire/peerwire/internal/quicsession"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/streampool"
)

// Config tunes a Transport. The zero value of each field means its documented default; a
// Config must not be modified after New.
type Config struct {
	// StreamTimeout bounds opening a send stream (waiting for the peer's stream credit), each
	// write (as a stall: the stream takes no data for this long), and Dial's wait for the
	// listener's ACCEPTED signal. Zero means 12 s.
	StreamTimeout time.Duration
	// MaxMessageSize is the largest message sent or accepted. Zero means 16 MiB; the most is
	// 4 GiB − 1, the largest the 4-byte length prefix carries.
	MaxMessageSize uint32
	// SendStreams is how many streams carry a connection's outgoing messages. Zero means 1,
	// which keeps every message of a connection in order; more allow concurrent senders to
	// proceed in parallel but give up order between different senders.
	SendStreams int
	// ReceiveQueue is how many received messages may wait for Recv before the connection
	// pushes back on the sender. Zero means 128.
	ReceiveQueue int
	// HandshakeTimeout bounds the TLS handshake. Zero means 10 s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection from which nothing arrived for this long. Zero means
	// 30 s; negative disables it.
	IdleTimeout time.Duration
	// KeepAlivePeriod is how often a quiet connection sends a keep-alive so that a live peer
	// is never idle. Zero means 10 s; negative disables keep-alives.
	KeepAlivePeriod time.Duration
	// MaxIncomingUniStreams is how many concurrent send streams a peer may open towards us.
	// Zero means 1024; negative means none: the peer cannot send us messages, and, as the
	// listener's ACCEPTED comes on a stream of its own, a Dial from us cannot complete.
	MaxIncomingUniStreams int64
	// Logger receives connection lifecycle events at debug level. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) streamTimeout() time.Duration {
	if c.StreamTimeout > 0 {
		return c.StreamTimeout
	}
	return streampool.DefaultTimeout
}

// New returns a Transport with both cores; each address picks its core.
func New(cfg Config) (Transport, error) {
	if cfg.SendStreams < 0 || cfg.ReceiveQueue < 0 || cfg.StreamTimeout < 0 || cfg.HandshakeTimeout < 0 {
		return nil, errors.New("peerwire: negative SendStreams, ReceiveQueue, StreamTimeout or HandshakeTimeout")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &transport{
		cfg:   cfg,
		log:   log,
		cores: map[Core]session.Core{QUIC: quicsession.New(), QMux: qmux.New()},
		lns:   make(map[*listener]struct{}),
		conns: make(map[*connection]struct{}),
	}, nil
}

type transport struct {
	cfg   Config
	log   *slog.Logger
	cores map[Core]session.Core

	mu     sync.Mutex
	closed bool
	lns    map[*listener]struct{}
	conns  map[*connection]struct{}
}

var _ Transport = (*transport)(nil)

func (t *transport) sessionConfig(alpn []string, cred *Credential) (*session.Config, error) {
	if cred == nil || cred.Certificate == nil {
		return nil, errors.New("peerwire: credential without certificate")
	}
	trust := cred.Trust
	return &session.Config{
		Credential:            cred.Certificate,
		Trust:                 &trust,
		ALPN:                  append([]string(nil), alpn...),
		HandshakeTimeout:      t.cfg.HandshakeTimeout,
		AcceptTimeout:         t.cfg.streamTimeout(),
		IdleTimeout:           t.cfg.IdleTimeout,
		KeepAlivePeriod:       t.cfg.KeepAlivePeriod,
		MaxIncomingUniStreams: t.cfg.MaxIncomingUniStreams,
	}, nil
}

func (t *transport) poolConfig() streampool.Config {
	return streampool.Config{
		Timeout:        t.cfg.streamTimeout(),
		MaxMessageSize: t.cfg.MaxMessageSize,
		SendStreams:    t.cfg.SendStreams,
		ReceiveQueue:   t.cfg.ReceiveQueue,
	}
}

func (t *transport) Listen(addr ma.Multiaddr, alpn []string, cred *Credential) (Listener, error) {
	core, hostport, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	cfg, err := t.sessionConfig(alpn, cred)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrTransportClosed
	}
	sl, err := t.cores[core].Listen(hostport, cfg)
	if err != nil {
		return nil, err
	}
	maddr, err := toMultiaddr(core, sl.Addr())
	if err != nil {
		_ = sl.Close()
		return nil, err
	}
	l := &listener{t: t, sl: sl, core: core, addr: maddr, cred: cred.Certificate}
	t.lns[l] = struct{}{}
	t.log.Debug("peerwire: listening", "addr", maddr, "alpn", alpn)
	return l, nil
}

func (t *transport) Dial(ctx context.Context, addr ma.Multiaddr, alpn []string, cred *Credential) (Connection, error) {
	core, hostport, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	cfg, err := t.sessionConfig(alpn, cred)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, ErrTransportClosed
	}
	sc, err := t.cores[core].Dial(ctx, hostport, cfg)
	if err != nil {
		return nil, err
	}
	// The pool starts now: messages the listener sends right after ACCEPTED wait in its
	// receive queue, whichever arrives first.
	c, err := t.adopt(sc, core, cred.Certificate.Hash())
	if err != nil {
		return nil, err
	}
	if err := c.awaitAccepted(ctx, cfg.AcceptWait()); err != nil {
		return nil, err
	}
	t.log.Debug("peerwire: accepted by the listener", "remote", c.state.RemoteAddr)
	return c, nil
}

// awaitAccepted waits for the listener's ACCEPTED, for at most timeout. Without it the
// connection is closed and the error says why: the listener refused us (its certificate check
// or its application), ctx ended, the connection closed, or nothing came in time.
func (c *connection) awaitAccepted(ctx context.Context, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case <-c.pool.Accepted():
		return nil
	case <-c.sc.Context().Done():
		select {
		case <-c.pool.Accepted():
			// Accepted, then closed: the connection is returned, and Recv still hands out
			// what the listener sent before closing.
			return nil
		default:
		}
		err = refusal(context.Cause(c.sc.Context()))
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = &TimeoutError{Op: opAwaitAccepted, After: timeout}
	}
	_ = c.CloseWithError(CodeNoError, "not accepted")
	return err
}

// opAwaitAccepted is the TimeoutError.Op of a Dial whose listener never sent ACCEPTED.
const opAwaitAccepted = "dial: waiting for the listener to accept the connection " +
	"(a peerwire listener sends ACCEPTED once its application accepts; is it one?)"

// refusal turns the cause of a connection closed during Dial into the dial's error: the
// listener's refusal of our certificate (*certs.RejectedByPeerError), else the close itself
// (which matches ErrRejected when the listener's application refused us).
func refusal(cause error) error {
	var byPeer *certs.RejectedByPeerError
	if errors.As(cause, &byPeer) {
		return byPeer
	}
	return cause
}

// adopt wraps an established session in a Connection owned by the transport.
func (t *transport) adopt(sc session.Conn, core Core, local identity.CertHash) (*connection, error) {
	c := &connection{sc: sc, core: core, local: local, state: sc.State(), timeout: t.cfg.streamTimeout()}
	// The pool exists before the connection is registered: Close, running concurrently on
	// another goroutine, closes every registered connection and its pool.
	c.pool = streampool.New(sc, t.poolConfig())
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = c.CloseWithError(session.CodeShutdown, "transport closed")
		return nil, ErrTransportClosed
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	context.AfterFunc(sc.Context(), func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		t.log.Debug("peerwire: connection closed", "remote", c.state.RemoteAddr, "cause", context.Cause(sc.Context()))
	})
	t.log.Debug("peerwire: connection established", "core", core, "remote", c.state.RemoteAddr, "alpn", c.state.ALPN, "peer", c.RemoteIdentity())
	return c, nil
}

func (t *transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	lns := make([]*listener, 0, len(t.lns))
	for l := range t.lns {
		lns = append(lns, l)
	}
	conns := make([]*connection, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, l := range lns {
		_ = l.Close()
	}
	for _, c := range conns {
		_ = c.CloseWithError(session.CodeShutdown, "transport closed")
	}
	var errs []error
	for _, core := range t.cores {
		errs = append(errs, core.Close())
	}
	return errors.Join(errs...)
}

type listener struct {
	t    *transport
	sl   session.Listener
	core Core
	addr ma.Multiaddr
	cred *certs.Credential
	once sync.Once
}

func (l *listener) Accept(ctx context.Context) (IncomingRequest, error) {
	in, err := l.sl.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return &incoming{l: l, in: in}, nil
}

func (l *listener) Addr() ma.Multiaddr { return l.addr }

func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.sl.Close()
		l.t.mu.Lock()
		delete(l.t.lns, l)
		l.t.mu.Unlock()
	})
	return err
}

type incoming struct {
	l  *listener
	in session.Incoming
}

func (i *incoming) RemoteAddr() net.Addr { return i.in.RemoteAddr() }

func (i *incoming) Accept(ctx context.Context) (Connection, error) {
	sc, err := i.in.Accept(ctx)
	if err != nil {
		return nil, err
	}
	c, err := i.l.t.adopt(sc, i.l.core, i.l.cred.Hash())
	if err != nil {
		return nil, err
	}
	// ACCEPTED goes out before Accept returns, so before any message the application sends.
	if err := c.pool.SendAccepted(ctx); err != nil {
		_ = c.CloseWithError(CodeNoError, "could not send ACCEPTED")
		return nil, fmt.Errorf("peerwire: accept: sending ACCEPTED to the dialer: %w", err)
	}
	return c, nil
}

func (i *incoming) Reject() error { return i.in.Reject() }

type connection struct {
	timeout time.Duration
	sc      session.Conn
	pool    *streampool.Pool
	core    Core
	local   identity.CertHash
	state   session.State
}

var _ Connection = (*connection)(nil)

func (c *connection) LocalAddr() net.Addr                  { return c.state.LocalAddr }
func (c *connection) RemoteAddr() net.Addr                 { return c.state.RemoteAddr }
func (c *connection) LocalIdentity() identity.CertHash     { return c.local }
func (c *connection) RemoteIdentity() identity.CertHash    { return c.state.Peer.Hash }
func (c *connection) RemotePeerID() identity.PeerID        { return c.state.Peer.PeerID }
func (c *connection) RemoteCertificate() *x509.Certificate { return c.state.Peer.Leaf }
func (c *connection) RemoteIdentityKeys() []identity.PublicKey {
	return append([]identity.PublicKey(nil), c.state.Peer.Keys...)
}
func (c *connection) ALPN() string             { return c.state.ALPN }
func (c *connection) ALPNIs(p string) bool     { return c.state.ALPN == p }
func (c *connection) Core() Core               { return c.core }
func (c *connection) Done() <-chan struct{}    { return c.sc.Context().Done() }
func (c *connection) Context() context.Context { return c.sc.Context() }

func (c *connection) Err() error {
	if c.sc.Context().Err() == nil {
		return nil
	}
	return context.Cause(c.sc.Context())
}

func (c *connection) Send(ctx context.Context, msg []byte) error {
	return c.pool.Send(ctx, msg)
}

func (c *connection) Recv(ctx context.Context) ([]byte, time.Duration, error) {
	m, err := c.pool.Recv(ctx)
	return m.Data, m.Transfer, err
}

// Close is graceful: it finishes the send streams after the messages already sent, waits
// (at most the stream timeout) until the peer has read them, then closes with code 0. Without
// the wait, closing right after Send would discard messages still in flight.
func (c *connection) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	derr := c.pool.Drain(ctx)
	if derr != nil && c.sc.Context().Err() != nil && !errors.Is(derr, context.DeadlineExceeded) {
		// The peer closed first; what it read is what it read.
		derr = nil
	}
	code, reason := session.CodeNoError, ""
	if derr != nil {
		code, reason = session.CodeUndelivered, "closed before the peer read every message"
	}
	err := c.CloseWithError(code, reason)
	if errors.Is(derr, context.DeadlineExceeded) {
		derr = &TimeoutError{Op: "close: waiting for the peer to read our messages", After: c.timeout}
	}
	return errors.Join(derr, err)
}

func (c *connection) CloseWithError(code ApplicationErrorCode, reason string) error {
	err := c.sc.CloseWithError(code, reason)
	_ = c.pool.Close()
	if err != nil {
		return fmt.Errorf("peerwire: close: %w", err)
	}
	return nil
}
