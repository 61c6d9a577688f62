package p2ptransport

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/internal/session"
)

// maxHandshakes bounds the inbound handshakes in progress per listener. Further attempts
// wait in the core's accept queue, which refuses them once full.
const maxHandshakes = 64

// listener accepts connection attempts from a session listener. Attempts are gated
// (InterceptAccept) and given a resource scope before their handshake starts, which then runs
// in its own goroutine, so a slow peer does not hold up the others.
type listener struct {
	t    *Transport
	sl   session.Listener
	addr ma.Multiaddr

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	conns  chan tpt.CapableConn // handshakes done, waiting for Accept
	sem    chan struct{}
	wg     sync.WaitGroup // the accept loop and the handshakes

	closeOnce sync.Once
	closeErr  error
}

func newListener(t *Transport, sl session.Listener, addr ma.Multiaddr) *listener {
	l := &listener{t: t, sl: sl, addr: addr, conns: make(chan tpt.CapableConn), sem: make(chan struct{}, maxHandshakes)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.run()
	return l
}

func (l *listener) run() {
	defer l.wg.Done()
	for {
		in, err := l.sl.Accept(l.ctx)
		if err != nil {
			return // the listener closed
		}
		l.admit(in)
	}
}

// admit decides on an attempt before its handshake: the gater, then a resource scope; an
// admitted attempt's handshake runs in the background.
func (l *listener) admit(in session.Incoming) {
	remote, err := l.t.multiaddr(in.RemoteAddr())
	if err != nil {
		_ = in.Reject()
		return
	}
	if l.t.gater != nil && !l.t.gater.InterceptAccept(&connAddrs{local: l.addr, remote: remote}) {
		_ = in.Reject()
		return
	}
	scope, err := l.t.rcmgr.OpenConnection(network.DirInbound, !l.t.kind.UDP, remote)
	if err != nil {
		slog.Debug("resource manager refused an incoming connection", "transport", l.t.kind.Name, "addr", remote, "err", err)
		_ = in.Reject()
		return
	}
	select {
	case l.sem <- struct{}{}:
	case <-l.ctx.Done():
		scope.Done()
		_ = in.Reject()
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.sem }()
		sc, err := in.Accept(l.ctx)
		if err != nil {
			scope.Done()
			slog.Debug("incoming handshake failed", "transport", l.t.kind.Name, "addr", remote, "err", err)
			return
		}
		c, err := l.t.upgrade(sc, scope, network.DirInbound, "", remote)
		if err != nil {
			slog.Debug("incoming connection refused", "transport", l.t.kind.Name, "addr", remote, "err", err)
			return
		}
		select {
		case l.conns <- c:
		case <-l.ctx.Done():
			_ = c.CloseWithError(network.ConnShutdown)
		}
	}()
}

// Accept returns the next connection whose handshake completed and which the gater and the
// resource manager allowed.
func (l *listener) Accept() (tpt.CapableConn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, tpt.ErrListenerClosed
	}
}

// Close stops listening, fails handshakes in progress and waits for them. Connections
// already accepted stay open.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.sl.Close()
		l.wg.Wait()
		l.t.mu.Lock()
		delete(l.t.listeners, l)
		l.t.mu.Unlock()
	})
	return l.closeErr
}

func (l *listener) Addr() net.Addr          { return l.sl.Addr() }
func (l *listener) Multiaddr() ma.Multiaddr { return l.addr }

// connAddrs is what the gater sees of an attempt before its handshake.
type connAddrs struct{ local, remote ma.Multiaddr }

func (a *connAddrs) LocalMultiaddr() ma.Multiaddr  { return a.local }
func (a *connAddrs) RemoteMultiaddr() ma.Multiaddr { return a.remote }
