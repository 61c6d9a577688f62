package libp2pquic_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/nettransport/internal/p2ptest"
	"github.com/peerwire/peerwire/nettransport/libp2pquic"
)

const (
	stockAgent    = "stock-go-libp2p"
	peerwireAgent = "peerwire-libp2pquic"
)

// stockHost is a go-libp2p host with the default transports, listening on loopback TCP and
// QUIC.
func stockHost(t *testing.T) host.Host {
	return p2ptest.NewHost(t, stockAgent,
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"))
}

// peerwireHost is a go-libp2p host whose only transport is libp2pquic.
func peerwireHost(t *testing.T) host.Host {
	return p2ptest.NewHost(t, peerwireAgent,
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
}

// TestInteropWithStockLibp2p connects a host using libp2pquic and a stock host, each
// dialing the other: ping, identify and 100 concurrent echo streams in both directions.
func TestInteropWithStockLibp2p(t *testing.T) {
	for _, tc := range []struct {
		name          string
		peerwireDials bool
	}{
		{"peerwire dials stock", true},
		{"stock dials peerwire", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stock, ours := stockHost(t), peerwireHost(t)
			from, to := stock, ours
			if tc.peerwireDials {
				from, to = ours, stock
			}
			fc, tcn := p2ptest.Connect(t, from, to, ma.P_QUIC_V1)
			require.Equal(t, "quic-v1", fc.ConnState().Transport)
			require.Equal(t, "quic-v1", tcn.ConnState().Transport)
			require.Equal(t, to.ID(), fc.RemotePeer())
			require.Equal(t, from.ID(), tcn.RemotePeer())
			// The host using libp2pquic carries the connection on peerwire's core (As reaches
			// its verified certificate); the stock host on go-libp2p's transport.
			ourConn, stockConn := fc, tcn
			if !tc.peerwireDials {
				ourConn, stockConn = tcn, fc
			}
			var pc *certs.PeerCertificate
			require.True(t, ourConn.As(&pc))
			require.Equal(t, stock.ID(), pc.PeerID.Libp2p())
			require.False(t, stockConn.As(&pc))

			p2ptest.Ping(t, from, to)
			p2ptest.Ping(t, to, from)
			p2ptest.Identified(t, ours, stock.ID(), stockAgent)
			p2ptest.Identified(t, stock, ours.ID(), peerwireAgent)
			p2ptest.EchoStreams(t, from, to, 100, 64<<10)
			p2ptest.EchoStreams(t, to, from, 100, 64<<10)
			require.Len(t, from.Network().ConnsToPeer(to.ID()), 1, "everything ran on the one connection")
		})
	}
}

// TestInteropWrongPeerID dials a host under another peer's ID: the dial fails with
// sec.ErrPeerIDMismatch, whichever side runs peerwire.
func TestInteropWrongPeerID(t *testing.T) {
	stock, ours := stockHost(t), peerwireHost(t)
	_, wrong := newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	err := ours.Connect(ctx, peer.AddrInfo{ID: wrong, Addrs: p2ptest.AddrsWith(stock, ma.P_QUIC_V1)})
	var mismatch sec.ErrPeerIDMismatch
	require.ErrorAs(t, err, &mismatch)
	require.Equal(t, wrong, mismatch.Expected)
	require.Equal(t, stock.ID(), mismatch.Actual)

	err = stock.Connect(ctx, peer.AddrInfo{ID: wrong, Addrs: p2ptest.AddrsWith(ours, ma.P_QUIC_V1)})
	require.ErrorAs(t, err, &mismatch)
	require.Equal(t, ours.ID(), mismatch.Actual)

	require.Empty(t, ours.Network().Conns())
	require.Empty(t, stock.Network().Conns())
}
