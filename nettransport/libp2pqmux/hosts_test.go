package libp2pqmux_test

import (
	"time"

	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/nettransport/internal/p2ptest"
	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
)

// qmuxOnlyHost is a host whose only transport is libp2pqmux.
func qmuxOnlyHost(t *testing.T, agent string) host.Host {
	return p2ptest.NewHost(t, agent,
		libp2p.Transport(libp2pqmux.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0/qmux"))
}

// tcpOnlyHost has go-libp2p's default transports plus QMux, and listens on TCP only (plain
// TCP and QMux), as a host on a network that blocks UDP would.
func tcpOnlyHost(t *testing.T, agent string) host.Host {
	return p2ptest.NewHost(t, agent,
		libp2p.ChainOptions(libp2p.DefaultTransports, libp2p.Transport(libp2pqmux.NewTransport)),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/qmux"))
}

// TestHostsOverQMux connects two hosts whose only transport is QMux: ping, identify and 100
// concurrent echo streams each way.
func TestHostsOverQMux(t *testing.T) {
	a, b := qmuxOnlyHost(t, "peerwire-a"), qmuxOnlyHost(t, "peerwire-b")
	ac, bc := p2ptest.Connect(t, a, b, libp2pqmux.P_QMUX)
	require.Equal(t, "qmux", ac.ConnState().Transport)
	require.Equal(t, "qmux", bc.ConnState().Transport)
	var pc *certs.PeerCertificate
	require.True(t, ac.As(&pc))
	require.Equal(t, b.ID(), pc.PeerID.Libp2p())

	p2ptest.Ping(t, a, b)
	p2ptest.Ping(t, b, a)
	p2ptest.Identified(t, a, b.ID(), "peerwire-b")
	p2ptest.Identified(t, b, a.ID(), "peerwire-a")
	p2ptest.EchoStreams(t, a, b, 100, 64<<10)
	p2ptest.EchoStreams(t, b, a, 100, 64<<10)
}

// TestTCPOnlyHostsConnectOverQMux runs QMux beside the default transports on hosts that
// listen on TCP only: they connect over QMux, and over plain TCP (TLS+yamux) as before.
func TestTCPOnlyHostsConnectOverQMux(t *testing.T) {
	a, b := tcpOnlyHost(t, "peerwire-a"), tcpOnlyHost(t, "peerwire-b")
	require.NotEmpty(t, p2ptest.AddrsWith(b, ma.P_TCP), "plain TCP listener")
	ac, _ := p2ptest.Connect(t, a, b, libp2pqmux.P_QMUX)
	require.Equal(t, "qmux", ac.ConnState().Transport)
	p2ptest.Ping(t, a, b)
	p2ptest.Identified(t, a, b.ID(), "peerwire-b")
	p2ptest.Identified(t, b, a.ID(), "peerwire-a")
	p2ptest.EchoStreams(t, a, b, 100, 16<<10)

	// Identify tells each host the other's QMux address.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var qmux int
		for _, addr := range a.Peerstore().Addrs(b.ID()) {
			if _, last := ma.SplitLast(addr); last.Code() == libp2pqmux.P_QMUX {
				qmux++
			}
		}
		require.Positive(c, qmux)
	}, 10*time.Second, 20*time.Millisecond)

	// The default TCP transport still works beside QMux: a stock host connects over TCP.
	stock := p2ptest.NewHost(t, "stock", libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	sc, _ := p2ptest.Connect(t, stock, a, ma.P_TCP)
	require.Equal(t, "tcp", sc.ConnState().Transport)
	p2ptest.Ping(t, stock, a)
	p2ptest.Identified(t, stock, a.ID(), "peerwire-a")
}
