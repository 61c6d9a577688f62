package p2ptest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/delayproxy"
)

// The delay proxies stand in for `tc netem delay` where the kernel lacks sch_netem (see
// package delayproxy): they add a fixed one-way delay to every packet (UDP) or every chunk of
// bytes (TCP) in both directions, without loss or bandwidth limits, which is what counting
// round trips needs.

// DelayUDP forwards datagrams between clients and target with one-way delay d each way. It
// returns the proxy's address; the proxy closes with the test.
func DelayUDP(t testing.TB, target string, d time.Duration) string {
	t.Helper()
	return startProxy(t, delayproxy.UDP, target, d)
}

// DelayTCP forwards TCP connections to target with one-way delay d each way. The client's
// connect completes at once at the proxy, so the first bytes it sends are held until 3d
// after the connection was accepted: when they would reach the server after a real
// handshake (SYN, SYN-ACK, then data: 1.5 round trips). It returns the proxy's address; the
// proxy closes with the test.
func DelayTCP(t testing.TB, target string, d time.Duration) string {
	t.Helper()
	return startProxy(t, delayproxy.TCP, target, d)
}

func startProxy(t testing.TB, start func(string, time.Duration) (*delayproxy.Proxy, error), target string, d time.Duration) string {
	t.Helper()
	p, err := start(target, d)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p.Addr().String()
}
