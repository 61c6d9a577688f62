// Command libp2p shows peerwire's transports inside a go-libp2p host.
//
// A host registers three transports: libp2pquic (QUIC, in place of go-libp2p's own QUIC
// transport, with which it is wire-compatible), libp2pqmux (QMux over TCP, for networks that
// block UDP) and go-libp2p's TCP transport (TLS+yamux, for peers that have neither). The
// program starts two such hosts, connects them once over each transport and pings across.
// Given -peer, it also dials that peer (any libp2p node with a quic-v1, qmux or tcp address)
// and pings it.
//
//	go run ./examples/libp2p
//	go run ./examples/libp2p -peer /ip4/192.0.2.1/udp/4001/quic-v1/p2p/12D3KooW...
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
	"github.com/peerwire/peerwire/nettransport/libp2pquic"
)

func main() {
	remote := flag.String("peer", "", "a peer to dial and ping: a multiaddr ending in /p2p/<peer ID>")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *remote); err != nil {
		log.Fatal(err)
	}
}

// newHost starts a host with peerwire's transports beside go-libp2p's TCP transport,
// listening on loopback.
func newHost() (host.Host, error) {
	// peerwire's transports need an Ed25519 identity, go-libp2p's default key type.
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return libp2p.New(
		libp2p.Identity(key),
		// Naming transports replaces the defaults: list every transport the host should have.
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Transport(libp2pqmux.NewTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ListenAddrStrings(
			"/ip4/127.0.0.1/udp/0/quic-v1",
			"/ip4/127.0.0.1/tcp/0/qmux",
			"/ip4/127.0.0.1/tcp/0",
		),
	)
}

func run(ctx context.Context, w io.Writer, remote string) error {
	a, err := newHost()
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := newHost()
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(w, "host A %s listens on %v\n", a.ID(), a.Addrs())

	for _, tr := range []struct {
		name string
		code int
	}{{"quic-v1", ma.P_QUIC_V1}, {"qmux", libp2pqmux.P_QMUX}, {"tcp", ma.P_TCP}} {
		// Forget the addresses identify taught B, so that it dials only this transport's.
		b.Peerstore().ClearAddrs(a.ID())
		info := peer.AddrInfo{ID: a.ID(), Addrs: addrsEndingIn(a, tr.code)}
		if err := b.Connect(ctx, info); err != nil {
			return fmt.Errorf("%s: %w", tr.name, err)
		}
		conn := b.Network().ConnsToPeer(a.ID())[0]
		rtt, err := pingOnce(ctx, b, a.ID())
		if err != nil {
			return fmt.Errorf("%s: %w", tr.name, err)
		}
		fmt.Fprintf(w, "B → A over %-7s (%s): ping %v\n", conn.ConnState().Transport, conn.RemoteMultiaddr(), rtt.Round(time.Microsecond))
		// Close, so the next round dials again over the next transport.
		if err := b.Network().ClosePeer(a.ID()); err != nil {
			return err
		}
	}

	if remote != "" {
		info, err := peer.AddrInfoFromString(remote)
		if err != nil {
			return err
		}
		if err := b.Connect(ctx, *info); err != nil {
			return err
		}
		rtt, err := pingOnce(ctx, b, info.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "B → %s: ping %v\n", info.ID, rtt)
	}
	return nil
}

func addrsEndingIn(h host.Host, code int) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range h.Addrs() {
		if _, last := ma.SplitLast(a); last != nil && last.Code() == code {
			out = append(out, a)
		}
	}
	return out
}

func pingOnce(ctx context.Context, h host.Host, p peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := <-ping.Ping(ctx, h, p)
	return r.RTT, r.Error
}
