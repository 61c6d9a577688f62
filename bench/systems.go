package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/nettransport"
)

// Endpoint is one end of a connection that moves whole messages.
type Endpoint interface {
	Send(ctx context.Context, msg []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

// Pair is one connection as both of its ends see it, ready to carry messages.
type Pair struct {
	// Client is the end on the node that dialed, Server the end on the node dialed.
	Client, Server Endpoint
	// Close closes the connection (both ends); the nodes stay open.
	Close func()
}

// Node is one participant of a system: it listens on loopback and connects to other nodes
// of the same system (the same call of System.Nodes).
type Node interface {
	// Connect dials peer and returns the new connection once both ends can carry messages.
	// Connects to the same peer are serialised; connecting two nodes twice is not supported
	// (libp2p hosts would share one connection).
	Connect(ctx context.Context, peer Node) (*Pair, error)
	// Close closes the node and every connection it holds.
	Close() error
}

// proxiedNode is a Node that can be reached through a proxy: the delay cases put a delay
// proxy in front of a node's listener and have another node dial the proxy. Every node type
// of this package is one.
type proxiedNode interface {
	Node
	// listenAddr is the socket address the node listens on: a *net.UDPAddr or *net.TCPAddr.
	listenAddr() (net.Addr, error)
	// connectVia is Connect with two differences. The dial goes to via, a proxy forwarding to
	// peer's listenAddr. And first, when not nil, is sent by the dialing end as soon as its
	// dial returned, before the other end is known to hold the connection, as an
	// application sends its first message; the pair's Server end receives it before anything
	// else. (Connect itself dials peer's own address and sends nothing.)
	connectVia(ctx context.Context, peer Node, via net.Addr, first []byte) (*Pair, error)
}

// viaMultiaddr is listen, a multiaddr whose first two components are an IP address and a
// port, with those replaced by via's.
func viaMultiaddr(listen ma.Multiaddr, via net.Addr) (ma.Multiaddr, error) {
	if len(listen) < 2 {
		return nil, fmt.Errorf("bench: %s has no IP address and port", listen)
	}
	m, err := manet.FromNetAddr(via)
	if err != nil {
		return nil, err
	}
	return m.Encapsulate(listen[2:]), nil
}

// netAddr is the socket address of a multiaddr whose first two components are an IP
// address and a port.
func netAddr(m ma.Multiaddr) (net.Addr, error) {
	if len(m) < 2 {
		return nil, fmt.Errorf("bench: %s has no IP address and port", m)
	}
	return manet.ToNetAddr(m[:2])
}

// System is one thing measured.
type System struct {
	Name string
	// Family is "quic" or "tcp": the chart compares each system with its family's reference.
	Family string
	// References name the systems this one is compared with, the one the performance issue
	// sets as the target first; empty for references.
	References []string
	// Nodes starts n nodes that trust each other (n is at least 2); each listens on loopback.
	// The caller closes them.
	Nodes func(ctx context.Context, n int) ([]Node, error)
	// Dialer prepares a listener and returns a function that dials it once (the mutually
	// authenticated handshake included) and closes the connection; cleanup releases
	// everything.
	Dialer func(ctx context.Context) (dial func(context.Context) error, cleanup func(), err error)
}

// Systems returns every system, peerwire's first.
func Systems() []System {
	return []System{
		{Name: "peerwire-quic", Family: "quic", References: []string{"quic-go", "libp2p-quic"},
			Nodes: peerwireNodes(quicAddr), Dialer: peerwireDialer(quicAddr)},
		{Name: "peerwire-qmux", Family: "tcp", References: []string{"tls-tcp", "libp2p-tcp"},
			Nodes: peerwireNodes(qmuxAddr), Dialer: peerwireDialer(qmuxAddr)},
		{Name: "quic-go", Family: "quic", Nodes: quicGoNodes(), Dialer: quicGoDialer()},
		{Name: "tls-tcp", Family: "tcp", Nodes: tcpNodes(true), Dialer: tcpDialer(true)},
		{Name: "tcp", Family: "tcp", Nodes: tcpNodes(false), Dialer: tcpDialer(false)},
		{Name: "libp2p-quic", Family: "quic", Nodes: libp2pNodes(libp2pQUIC), Dialer: libp2pDialer(libp2pQUIC)},
		{Name: "libp2p-tcp", Family: "tcp", Nodes: libp2pNodes(libp2pTCP), Dialer: libp2pDialer(libp2pTCP)},
	}
}

// Comparison is a system measured against one of its references.
type Comparison struct{ System, Reference string }

// Comparisons lists every system against each of its references: first every system against
// its target reference, then the others.
func Comparisons() []Comparison {
	var out []Comparison
	for i := 0; ; i++ {
		n := len(out)
		for _, s := range Systems() {
			if i < len(s.References) {
				out = append(out, Comparison{s.Name, s.References[i]})
			}
		}
		if len(out) == n {
			return out
		}
	}
}

// connectPair starts two nodes of s and connects them; cleanup closes everything.
func connectPair(ctx context.Context, s System) (p *Pair, cleanup func(), err error) {
	nodes, err := s.Nodes(ctx, 2)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: nodes: %w", s.Name, err)
	}
	p, err = nodes[0].Connect(ctx, nodes[1])
	if err != nil {
		closeNodes(nodes)
		return nil, nil, fmt.Errorf("%s: connect: %w", s.Name, err)
	}
	return p, func() { p.Close(); closeNodes(nodes) }, nil
}

func closeNodes(nodes []Node) {
	for _, n := range nodes {
		_ = n.Close()
	}
}

// startNodes starts n nodes with start(i), closing those already started if one fails.
func startNodes[N Node](n int, start func(i int) (N, error)) ([]Node, error) {
	nodes := make([]Node, 0, n)
	for i := range n {
		nd, err := start(i)
		if err != nil {
			closeNodes(nodes)
			return nil, err
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

var (
	quicAddr = ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")
	qmuxAddr = ma.StringCast("/ip4/127.0.0.1/tcp/0/qmux")
)

const alpn = "bench"

// peerwireCredentials returns n certificates, each trusting all n by hash (one shared,
// read-only list), as nodes configured with their peers' identities would.
func peerwireCredentials(n int) ([]*nettransport.Credential, error) {
	certsOf := make([]*certs.Credential, n)
	hashes := make([]identity.CertHash, n)
	for i := range n {
		k, err := identity.GenerateKey()
		if err != nil {
			return nil, err
		}
		if certsOf[i], err = certs.NewCredential(k, certs.Options{}); err != nil {
			return nil, err
		}
		hashes[i] = certsOf[i].Hash()
	}
	out := make([]*nettransport.Credential, n)
	for i, c := range certsOf {
		out[i] = &nettransport.Credential{Certificate: c, Trust: certs.TrustPolicy{Hashes: hashes}}
	}
	return out, nil
}

type peerwireEndpoint struct{ c nettransport.Connection }

func (e peerwireEndpoint) Send(ctx context.Context, m []byte) error { return e.c.Send(ctx, m) }
func (e peerwireEndpoint) Recv(ctx context.Context) ([]byte, error) {
	m, _, err := e.c.Recv(ctx)
	return m, err
}

// peerwireNode is one nettransport.Transport listening on one address.
type peerwireNode struct {
	tr   nettransport.Transport
	l    nettransport.Listener
	cred *nettransport.Credential
	mu   sync.Mutex // serialises incoming connects, so the next accepted connection is the caller's
}

func peerwireNodes(addr ma.Multiaddr) func(context.Context, int) ([]Node, error) {
	return func(_ context.Context, n int) ([]Node, error) {
		creds, err := peerwireCredentials(n)
		if err != nil {
			return nil, err
		}
		return startNodes(n, func(i int) (*peerwireNode, error) {
			tr, err := nettransport.New(nettransport.Config{})
			if err != nil {
				return nil, err
			}
			l, err := tr.Listen(addr, []string{alpn}, creds[i])
			if err != nil {
				tr.Close()
				return nil, err
			}
			return &peerwireNode{tr: tr, l: l, cred: creds[i]}, nil
		})
	}
}

func (n *peerwireNode) Close() error { return n.tr.Close() }

func (n *peerwireNode) listenAddr() (net.Addr, error) { return netAddr(n.l.Addr()) }

func (n *peerwireNode) Connect(ctx context.Context, peer Node) (*Pair, error) {
	return n.connectTo(ctx, peer, peer.(*peerwireNode).l.Addr(), nil)
}

func (n *peerwireNode) connectVia(ctx context.Context, peer Node, via net.Addr, first []byte) (*Pair, error) {
	addr, err := viaMultiaddr(peer.(*peerwireNode).l.Addr(), via)
	if err != nil {
		return nil, err
	}
	return n.connectTo(ctx, peer, addr, first)
}

// connectTo is connectVia with the address to dial.
func (n *peerwireNode) connectTo(ctx context.Context, peer Node, addr ma.Multiaddr, first []byte) (*Pair, error) {
	to := peer.(*peerwireNode)
	to.mu.Lock()
	defer to.mu.Unlock()
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type accepted struct {
		c   nettransport.Connection
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		in, err := to.l.Accept(actx)
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		c, err := in.Accept(actx)
		ch <- accepted{c, err}
	}()
	client, err := n.tr.Dial(ctx, addr, []string{alpn}, n.cred)
	if err == nil && first != nil {
		err = client.Send(ctx, first)
	}
	if err != nil {
		cancel()
	}
	a := <-ch
	if err != nil || a.err != nil {
		for _, c := range []nettransport.Connection{client, a.c} {
			if c != nil {
				_ = c.CloseWithError(0, "")
			}
		}
		return nil, errors.Join(err, a.err)
	}
	return &Pair{Client: peerwireEndpoint{client}, Server: peerwireEndpoint{a.c}, Close: func() {
		_ = client.CloseWithError(0, "")
		_ = a.c.CloseWithError(0, "")
	}}, nil
}

func peerwireDialer(addr ma.Multiaddr) func(context.Context) (func(context.Context) error, func(), error) {
	return func(context.Context) (func(context.Context) error, func(), error) {
		creds, err := peerwireCredentials(2)
		if err != nil {
			return nil, nil, err
		}
		str, err := nettransport.New(nettransport.Config{})
		if err != nil {
			return nil, nil, err
		}
		ctr, err := nettransport.New(nettransport.Config{})
		if err != nil {
			str.Close()
			return nil, nil, err
		}
		l, err := str.Listen(addr, []string{alpn}, creds[1])
		if err != nil {
			str.Close()
			ctr.Close()
			return nil, nil, err
		}
		actx, cancel := context.WithCancel(context.Background())
		acc := newAccepts()
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				in, err := l.Accept(actx)
				if err != nil {
					return
				}
				wg.Go(func() {
					c, err := in.Accept(actx)
					acc.done(err)
					if err == nil {
						<-c.Done()
					}
				})
			}
		})
		dial := func(ctx context.Context) error {
			c, err := ctr.Dial(ctx, l.Addr(), []string{alpn}, creds[0])
			if err != nil {
				return err
			}
			return errors.Join(acc.wait(ctx), c.CloseWithError(0, ""))
		}
		cleanup := func() {
			cancel()
			ctr.Close()
			str.Close()
			wg.Wait()
		}
		return dial, cleanup, nil
	}
}

// streamEndpoint frames messages on one byte stream: one Write per message (length and
// payload together), reads through a 64 KiB buffer allocated on the first Recv (so idle
// connections do not hold it). It is what a careful user would write by hand.
type streamEndpoint struct {
	rw  io.ReadWriter
	r   *bufio.Reader
	buf []byte
}

func newStreamEndpoint(rw io.ReadWriter) *streamEndpoint { return &streamEndpoint{rw: rw} }

func (e *streamEndpoint) Send(_ context.Context, m []byte) error {
	e.buf = binary.BigEndian.AppendUint32(e.buf[:0], uint32(len(m)))
	e.buf = append(e.buf, m...)
	_, err := e.rw.Write(e.buf)
	return err
}

func (e *streamEndpoint) Recv(context.Context) ([]byte, error) {
	if e.r == nil {
		e.r = bufio.NewReaderSize(e.rw, 64<<10)
	}
	var h [4]byte
	if _, err := io.ReadFull(e.r, h[:]); err != nil {
		return nil, err
	}
	m := make([]byte, binary.BigEndian.Uint32(h[:]))
	_, err := io.ReadFull(e.r, m)
	return m, err
}

// emptyMessage opens a reference stream: a zero-length message makes a lazily opened stream
// visible to the peer, which reads it with readEmpty.
var emptyMessage = []byte{0, 0, 0, 0}

// readEmpty reads emptyMessage from a new stream, before any buffering.
func readEmpty(r io.Reader) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(h[:]) != 0 {
		return errors.New("bench: stream did not start with an empty message")
	}
	return nil
}
