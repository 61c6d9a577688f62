package p2ptransport_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
	"github.com/peerwire/peerwire/nettransport/libp2pquic"
)

// kind is one public transport, so that every test runs on both cores.
type kind struct {
	name   string
	new    func(ic.PrivKey, connmgr.ConnectionGater, network.ResourceManager) (tpt.Transport, error)
	listen string
}

func kinds() []kind {
	return []kind{
		{"quic", func(k ic.PrivKey, g connmgr.ConnectionGater, r network.ResourceManager) (tpt.Transport, error) {
			return libp2pquic.NewTransport(k, nil, g, r)
		}, "/ip4/127.0.0.1/udp/0/quic-v1"},
		{"qmux", func(k ic.PrivKey, g connmgr.ConnectionGater, r network.ResourceManager) (tpt.Transport, error) {
			return libp2pqmux.NewTransport(k, nil, g, r)
		}, "/ip4/127.0.0.1/tcp/0/qmux"},
	}
}

func forEachKind(t *testing.T, f func(t *testing.T, k kind)) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

func newKey(t testing.TB) (ic.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := ic.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(t, err)
	return k, id
}

// node is a transport with its key.
type node struct {
	tpt.Transport
	id  peer.ID
	key ic.PrivKey
}

func newNode(t testing.TB, k kind, g connmgr.ConnectionGater, r network.ResourceManager) *node {
	t.Helper()
	key, id := newKey(t)
	tr, err := k.new(key, g, r)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.(interface{ Close() error }).Close()) })
	return &node{Transport: tr, id: id, key: key}
}

func listen(t testing.TB, n *node, k kind) tpt.Listener {
	t.Helper()
	l, err := n.Listen(ma.StringCast(k.listen))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// connect dials from b to a listener of a and returns both ends.
func connect(t testing.TB, k kind, a, b *node) (dialed, accepted tpt.CapableConn) {
	t.Helper()
	l := listen(t, a, k)
	type result struct {
		c   tpt.CapableConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		ch <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := b.Dial(ctx, l.Multiaddr(), a.id)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	r := <-ch
	require.NoError(t, r.err)
	t.Cleanup(func() { _ = r.c.Close() })
	return d, r.c
}

// streamPair opens a stream from c, writes hello on it so the peer learns of it, and accepts
// it on peer.
func streamPair(t testing.TB, c, peer tpt.CapableConn) (opened, accepted network.MuxedStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.OpenStream(ctx)
	require.NoError(t, err)
	_, err = s.Write([]byte("hello"))
	require.NoError(t, err)
	r, err := peer.AcceptStream()
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = r.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))
	return s, r
}

// gater is a connection gater whose answers the test sets, recording what it was asked.
type gater struct {
	mu                            sync.Mutex
	denyAccept                    bool
	denySecuredIn, denySecuredOut bool
	accepted                      []network.ConnMultiaddrs
	secured                       []peer.ID
}

var _ connmgr.ConnectionGater = (*gater)(nil)

func (g *gater) InterceptPeerDial(peer.ID) bool               { return true }
func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g *gater) InterceptAccept(a network.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accepted = append(g.accepted, a)
	return !g.denyAccept
}
func (g *gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secured = append(g.secured, p)
	if dir == network.DirInbound {
		return !g.denySecuredIn
	}
	return !g.denySecuredOut
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// rcmgr is a resource manager that records the calls on its connection scopes and refuses
// what the test asks it to.
type rcmgr struct {
	network.NullResourceManager
	mu            sync.Mutex
	events        []string
	refuseOpen    bool
	refuseSetPeer bool
}

func (r *rcmgr) record(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *rcmgr) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *rcmgr) OpenConnection(dir network.Direction, usefd bool, _ ma.Multiaddr) (network.ConnManagementScope, error) {
	r.record("open " + dir.String() + map[bool]string{true: " fd", false: ""}[usefd])
	if r.refuseOpen {
		return nil, network.ErrResourceLimitExceeded
	}
	return &scope{r: r}, nil
}

type scope struct {
	network.NullScope
	r *rcmgr
}

func (s *scope) SetPeer(p peer.ID) error {
	s.r.record("set peer " + p.String())
	if s.r.refuseSetPeer {
		return network.ErrResourceLimitExceeded
	}
	return nil
}

func (s *scope) Done() { s.r.record("done") }

// dialRefusal dials a listener expected to refuse b and returns the refusal: the dial's
// error, or, when the refusal came after the dial returned (the libp2p transports return at
// the end of their own handshake), the cause the connection ended with.
func dialRefusal(ctx context.Context, t testing.TB, b *node, addr ma.Multiaddr, id peer.ID) error {
	t.Helper()
	c, err := b.Dial(ctx, addr, id)
	if err != nil {
		return err
	}
	defer c.Close()
	var sc session.Conn
	require.True(t, c.As(&sc))
	select {
	case <-sc.Context().Done():
		return context.Cause(sc.Context())
	case <-ctx.Done():
		return errors.New("the listener did not refuse the connection")
	}
}
