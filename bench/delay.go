package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/peerwire/peerwire/internal/delayproxy"
)

// OneWayDelay is what the delay cases' proxy adds to every packet (QUIC) or every chunk of
// bytes (TCP) in each direction: a round trip costs twice as much.
const OneWayDelay = 25 * time.Millisecond

// delaySystems are the systems the delay cases measure: peerwire's two, their target
// references, and plain TCP (which costs little). The libp2p systems work through the proxy
// too (TestNodesConnectThroughAProxy) but are left out: at the tiny size they would add
// about a second each to CI, at the full size five to seven seconds each to every run.
var delaySystems = []string{"peerwire-quic", "peerwire-qmux", "quic-go", "tls-tcp", "tcp"}

// Every node type can be reached through a proxy.
var (
	_ proxiedNode = (*peerwireNode)(nil)
	_ proxiedNode = (*quicGoNode)(nil)
	_ proxiedNode = (*tcpNode)(nil)
	_ proxiedNode = (*libp2pNode)(nil)
)

// delayRTTBlocks is how many blocks each system's delay-rtt round trips are measured in.
const delayRTTBlocks = 4

// startProxy starts a delay proxy adding oneWay each way (UDP or TCP, as the node listens)
// in front of node.
func startProxy(node Node, oneWay time.Duration) (*delayproxy.Proxy, error) {
	pn, ok := node.(proxiedNode)
	if !ok {
		return nil, fmt.Errorf("bench: a %T cannot be reached through a proxy", node)
	}
	addr, err := pn.listenAddr()
	if err != nil {
		return nil, err
	}
	switch addr.(type) {
	case *net.UDPAddr:
		return delayproxy.UDP(addr.String(), oneWay)
	case *net.TCPAddr:
		return delayproxy.TCP(addr.String(), oneWay)
	}
	return nil, fmt.Errorf("bench: no delay proxy for %s address %s", addr.Network(), addr)
}

// connectDelayed starts two nodes of s and connects them through a delay proxy (see
// startProxy, OneWayDelay each way); cleanup closes everything.
func connectDelayed(ctx context.Context, s System) (*Pair, func(), error) {
	nodes, err := s.Nodes(ctx, 2)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: nodes: %w", s.Name, err)
	}
	proxy, err := startProxy(nodes[1], OneWayDelay)
	if err != nil {
		closeNodes(nodes)
		return nil, nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	p, err := nodes[0].(proxiedNode).connectVia(ctx, nodes[1], proxy.Addr(), nil)
	if err != nil {
		closeNodes(nodes)
		_ = proxy.Close()
		return nil, nil, fmt.Errorf("%s: connect: %w", s.Name, err)
	}
	return p, func() { p.Close(); closeNodes(nodes); _ = proxy.Close() }, nil
}

// runDelayRTT is the round-trip case through a delay proxy: a 64 B request and its echo,
// DelayRoundTrips times on each system of ss, side by side in delayRTTBlocks blocks per
// system. It reports the median in milliseconds.
func runDelayRTT(ctx context.Context, ss []System, size Size) ([][]float64, error) {
	rtts, err := roundTrips(ctx, ss, connectDelayed, size.DelayRoundTrips, delayRTTBlocks)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(ss))
	for i := range ss {
		out[i] = []float64{percentile(rtts[i], 0.50) / 1000}
	}
	return out, nil
}

// runDelayConnect measures connect-to-first-message through a delay proxy: DelayConnects
// client nodes, one after the other, dial one server node through the proxy, and each
// client sends a 64 B message the moment its dial returns; a connect's time runs from the
// start of the dial until the server's application received that message, so it counts
// every round trip of the handshakes (TCP's, TLS's and the system's own) before data flows.
// Every connect is a new client node, so no system can resume a session. It reports the
// median in milliseconds.
func runDelayConnect(ctx context.Context, s System, size Size) ([]float64, error) {
	n := max(size.DelayConnects, 1)
	nodes, err := s.Nodes(ctx, n+1)
	if err != nil {
		return nil, fmt.Errorf("%s: nodes: %w", s.Name, err)
	}
	defer closeNodes(nodes)
	server := nodes[0]
	proxy, err := startProxy(server, OneWayDelay)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer proxy.Close()
	first := make([]byte, rttMessage)
	took := make([]time.Duration, 0, n)
	for _, client := range nodes[1:] {
		start := time.Now()
		p, err := client.(proxiedNode).connectVia(ctx, server, proxy.Addr(), first)
		if err != nil {
			return nil, fmt.Errorf("%s: connect: %w", s.Name, err)
		}
		m, err := p.Server.Recv(ctx)
		d := time.Since(start)
		p.Close()
		if err == nil && len(m) != len(first) {
			err = errors.New("the first message arrived with the wrong length")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: first message: %w", s.Name, err)
		}
		took = append(took, d)
	}
	slices.Sort(took)
	return []float64{percentile(took, 0.50) / 1000}, nil
}

// runDelayBulk sends DelayBulkBytes in 1 MiB messages (one smaller message at the tiny
// size) on a new connection through a delay proxy, in one go, and reports MiB/s: with a round trip of 50 ms, how fast the system's
// flow-control windows open and how far they go. The systems are measured one after the
// other, not side by side in blocks as the loopback bulk case is: blocks would measure the
// windows opened by the earlier blocks.
func runDelayBulk(ctx context.Context, s System, size Size) ([]float64, error) {
	p, cleanup, err := connectDelayed(ctx, s)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	msg := min(max(size.DelayBulkBytes, 1), bulkMessage)
	n := max(size.DelayBulkBytes/msg, 1)
	d, err := stream(ctx, p, n, msg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return []float64{float64(n*msg) / (1 << 20) / d.Seconds()}, nil
}
