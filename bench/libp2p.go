package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/transport"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquictransport "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// benchProtocol is the stream protocol of the libp2p systems: 4-byte big-endian
// length-prefixed messages, as on the other references' streams.
const benchProtocol = protocol.ID("/peerwire-bench/1.0.0")

// libp2pFlavour is one transport of stock go-libp2p.
type libp2pFlavour struct {
	listen    ma.Multiaddr
	transport libp2p.Option
}

var (
	libp2pQUIC = libp2pFlavour{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), libp2p.Transport(libp2pquictransport.NewTransport)}
	libp2pTCP  = libp2pFlavour{ma.StringCast("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport)}
)

// newHost starts a go-libp2p host with its default options except: only f's transport, TLS
// 1.3 as the only security protocol (QUIC has it built in), yamux as the muxer (the
// default), listening on loopback when listen is set, no resource or connection manager
// limits (so the idle-connection case is neither refused nor trimmed), and no relay, ping or
// metrics.
func newHost(f libp2pFlavour, listen bool) (host.Host, error) {
	addrs := libp2p.NoListenAddrs
	if listen {
		addrs = libp2p.ListenAddrs(f.listen)
	}
	return libp2p.New(
		f.transport,
		addrs,
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.Ping(false),
		libp2p.DisableMetrics(),
	)
}

// libp2pNode is one host serving benchProtocol.
type libp2pNode struct {
	h       host.Host
	streams chan network.Stream // benchProtocol streams the host accepted
	mu      sync.Mutex          // serialises incoming connects, so the next stream is the caller's
}

func libp2pNodes(f libp2pFlavour) func(context.Context, int) ([]Node, error) {
	return func(_ context.Context, n int) ([]Node, error) {
		return startNodes(n, func(int) (*libp2pNode, error) {
			h, err := newHost(f, true)
			if err != nil {
				return nil, err
			}
			nd := &libp2pNode{h: h, streams: make(chan network.Stream, 1)}
			h.SetStreamHandler(benchProtocol, func(s network.Stream) {
				select {
				case nd.streams <- s:
				default: // nobody connecting: not ours
					_ = s.Reset()
				}
			})
			return nd, nil
		})
	}
}

func (n *libp2pNode) Close() error { return n.h.Close() }

func (n *libp2pNode) listenAddr() (net.Addr, error) {
	addrs := n.h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return nil, errors.New("bench: libp2p host listens nowhere")
	}
	return netAddr(addrs[0])
}

// Connect connects the hosts (host.Connect, which waits for identify), opens a benchProtocol
// stream and sends an empty message, which completes the protocol negotiation and hands the
// stream to the peer's handler.
func (n *libp2pNode) Connect(ctx context.Context, peerNode Node) (*Pair, error) {
	return n.connectTo(ctx, peerNode, peerNode.(*libp2pNode).h.Network().ListenAddresses(), nil)
}

// connectVia sends first, if any, right after the empty message that opens the stream.
func (n *libp2pNode) connectVia(ctx context.Context, peerNode Node, via net.Addr, first []byte) (*Pair, error) {
	addrs := peerNode.(*libp2pNode).h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return nil, errors.New("bench: libp2p host listens nowhere")
	}
	addr, err := viaMultiaddr(addrs[0], via)
	if err != nil {
		return nil, err
	}
	return n.connectTo(ctx, peerNode, []ma.Multiaddr{addr}, first)
}

// connectTo is connectVia with the addresses to dial.
func (n *libp2pNode) connectTo(ctx context.Context, peerNode Node, addrs []ma.Multiaddr, first []byte) (*Pair, error) {
	to := peerNode.(*libp2pNode)
	to.mu.Lock()
	defer to.mu.Unlock()
	id := to.h.ID()
	if err := n.h.Connect(ctx, peer.AddrInfo{ID: id, Addrs: addrs}); err != nil {
		return nil, err
	}
	cs, err := n.h.NewStream(ctx, id, benchProtocol)
	if err == nil {
		_, err = cs.Write(emptyMessage)
	}
	if err == nil && first != nil {
		err = newStreamEndpoint(cs).Send(ctx, first)
	}
	var ss network.Stream
	if err == nil {
		select {
		case ss = <-to.streams:
			err = readEmpty(ss)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	closeAll := func() {
		for _, s := range []network.Stream{cs, ss} {
			if s != nil {
				_ = s.Reset()
			}
		}
		_ = n.h.Network().ClosePeer(id)
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	return &Pair{Client: newStreamEndpoint(cs), Server: newStreamEndpoint(ss), Close: closeAll}, nil
}

// transports is what the swarm behind a host offers to find its transports.
type transports interface {
	TransportForDialing(ma.Multiaddr) transport.Transport
	TransportForListening(ma.Multiaddr) transport.Transport
}

// libp2pDialer measures the transport-level dial of two stock hosts: the swarm's own
// transport (configured by libp2p.New: TLS with libp2p's peer verification both ways, yamux
// negotiated inside the TLS handshake for TCP) dials a listener of the other host's
// transport, and the connection is closed as soon as it is established. Identify, which a
// host runs on every new connection, is left out: peerwire's dial has no such exchange.
func libp2pDialer(f libp2pFlavour) func(context.Context) (func(context.Context) error, func(), error) {
	return func(context.Context) (func(context.Context) error, func(), error) {
		srv, err := newHost(f, false)
		if err != nil {
			return nil, nil, err
		}
		cli, err := newHost(f, false)
		if err != nil {
			srv.Close()
			return nil, nil, err
		}
		str, ok1 := srv.Network().(transports)
		ctr, ok2 := cli.Network().(transports)
		if !ok1 || !ok2 {
			cli.Close()
			srv.Close()
			return nil, nil, fmt.Errorf("bench: libp2p network %T does not expose its transports", srv.Network())
		}
		ln, err := str.TransportForListening(f.listen).Listen(f.listen)
		if err != nil {
			cli.Close()
			srv.Close()
			return nil, nil, err
		}
		acc := newAccepts()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			conns = make(map[transport.CapableConn]struct{})
		)
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				acc.done(nil) // the listener returns a connection once it is upgraded
				mu.Lock()
				conns[c] = struct{}{}
				mu.Unlock()
				wg.Go(func() {
					// AcceptStream fails once the dialer closed the connection.
					for {
						s, err := c.AcceptStream()
						if err != nil {
							break
						}
						_ = s.Reset()
					}
					_ = c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				})
			}
		})
		raddr, id := ln.Multiaddr(), srv.ID()
		tr := ctr.TransportForDialing(raddr)
		dial := func(ctx context.Context) error {
			c, err := tr.Dial(ctx, raddr, id)
			if err != nil {
				return err
			}
			return errors.Join(acc.wait(ctx), c.Close())
		}
		cleanup := func() {
			_ = ln.Close()
			_ = cli.Close()
			mu.Lock()
			for c := range conns {
				_ = c.Close() // one the dialer gave up on
			}
			mu.Unlock()
			wg.Wait()
			_ = srv.Close()
		}
		return dial, cleanup, nil
	}
}
