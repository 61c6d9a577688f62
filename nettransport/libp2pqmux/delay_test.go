package libp2pqmux_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/nettransport/internal/p2ptest"
	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
	"github.com/peerwire/peerwire/nettransport/libp2pquic"
)

// stack is one way for two libp2p hosts to connect.
type stack struct {
	name   string
	listen string
	code   int
	udp    bool
	opts   []libp2p.Option // nil: go-libp2p's default transports
}

var (
	stockTCP      = stack{"tcp+tls+yamux (stock)", "/ip4/127.0.0.1/tcp/0", ma.P_TCP, false, nil}
	peerwireQMux  = stack{"qmux (peerwire)", "/ip4/127.0.0.1/tcp/0/qmux", libp2pqmux.P_QMUX, false, []libp2p.Option{libp2p.Transport(libp2pqmux.NewTransport)}}
	stockQUIC     = stack{"quic-v1 (stock)", "/ip4/127.0.0.1/udp/0/quic-v1", ma.P_QUIC_V1, true, nil}
	peerwireQUIC  = stack{"quic-v1 (peerwire)", "/ip4/127.0.0.1/udp/0/quic-v1", ma.P_QUIC_V1, true, []libp2p.Option{libp2p.Transport(libp2pquic.NewTransport)}}
	delayedStacks = []stack{stockTCP, peerwireQMux, stockQUIC, peerwireQUIC}
)

// timeToFirstEcho starts two hosts on s, connects one to the other through a proxy adding
// oneWay delay in each direction, and returns how long host.Connect took (the connection
// and identify) and how long until a 1-byte echo on a first stream came back.
func timeToFirstEcho(t *testing.T, s stack, oneWay time.Duration) (connect, firstEcho time.Duration) {
	t.Helper()
	server := p2ptest.NewHost(t, "server", append([]libp2p.Option{libp2p.ListenAddrStrings(s.listen)}, s.opts...)...)
	client := p2ptest.NewHost(t, "client", append([]libp2p.Option{libp2p.NoListenAddrs}, s.opts...)...)
	addr := p2ptest.AddrsWith(server, s.code)[0]
	ip, rest := ma.SplitFirst(addr)
	port, suffix := ma.SplitFirst(rest)
	target := net.JoinHostPort(ip.Value(), port.Value())
	proxy := p2ptest.DelayTCP(t, target, oneWay)
	if s.udp {
		proxy = p2ptest.DelayUDP(t, target, oneWay)
	}
	_, proxyPort, err := net.SplitHostPort(proxy)
	require.NoError(t, err)
	via, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/%s/%s", port.Protocol().Name, proxyPort))
	require.NoError(t, err)
	via = via.Encapsulate(suffix)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{via}}))
	connect = time.Since(start)
	st, err := client.NewStream(ctx, server.ID(), p2ptest.EchoProtocol)
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Write([]byte{1})
	require.NoError(t, err)
	_, err = io.ReadFull(st, make([]byte, 1))
	require.NoError(t, err)
	return connect, time.Since(start)
}

// TestRoundTripsUnderDelay counts the round trips to a usable connection (host.Connect,
// which includes identify) and to a first stream's echo, for QMux beside stock TCP and for
// both QUIC transports, in one run, through proxies that delay every packet by 25 ms each
// way (this kernel has no sch_netem for `tc netem`). The best of three tries counts.
//
// Measured: stock TCP+TLS+yamux takes 4 round trips to connect and 5 to the first echo, QMux
// 3 and 4. QMux skips multistream's negotiation of the security protocol and the muxer, and
// its listener sends its QX_TRANSPORT_PARAMETERS at 0.5-RTT, with its TLS Finished, so the
// dialer can open identify's stream the moment its own handshake is done. The test holds
// QMux to at least half a round trip fewer than TCP on both counts, and libp2pquic to no
// slower than go-libp2p's QUIC. Run it alone for the figures:
//
//	go test -run TestRoundTripsUnderDelay -count=1 -v ./nettransport/libp2pqmux/
func TestRoundTripsUnderDelay(t *testing.T) {
	const oneWay = 25 * time.Millisecond
	rtt := 2 * oneWay
	type result struct{ connect, echo time.Duration }
	results := map[string]result{}
	for _, s := range delayedStacks {
		best := result{time.Hour, time.Hour}
		for range 3 {
			c, e := timeToFirstEcho(t, s, oneWay)
			best = result{min(best.connect, c), min(best.echo, e)}
		}
		results[s.name] = best
		t.Logf("%-22s connect %5.1f ms = %.2f RTT, first echo %5.1f ms = %.2f RTT", s.name,
			ms(best.connect), rtts(best.connect, rtt), ms(best.echo), rtts(best.echo, rtt))
	}
	slack := rtt / 2
	qmux, tcp := results[peerwireQMux.name], results[stockTCP.name]
	require.Less(t, qmux.connect+slack, tcp.connect, "QMux does not connect in fewer round trips than TCP+TLS+yamux")
	require.Less(t, qmux.echo+slack, tcp.echo, "QMux's first echo does not take fewer round trips than TCP+TLS+yamux's")
	require.Less(t, results[peerwireQUIC.name].echo, results[stockQUIC.name].echo+slack, "libp2pquic slower than go-libp2p's QUIC")
}

func ms(d time.Duration) float64        { return float64(d) / float64(time.Millisecond) }
func rtts(d, rtt time.Duration) float64 { return float64(d) / float64(rtt) }
