package quicsession

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLocalAddrNamesTheRoutedSource(t *testing.T) {
	var r routes
	wildcard := &net.UDPAddr{IP: net.IPv6unspecified, Port: 4242}
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	got := r.localAddr(wildcard, dst)
	require.Equal(t, "127.0.0.1:4242", got.String())

	// A bound address is kept as it is.
	bound := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}
	require.Same(t, bound, r.localAddr(bound, dst).(*net.UDPAddr))
}

func TestLocalAddrRemembersRoutesForAWhile(t *testing.T) {
	var r routes
	wildcard := &net.UDPAddr{IP: net.IPv4zero, Port: 4242}
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	r.localAddr(wildcard, dst)
	require.Len(t, r.m, 1)

	// A remembered answer is used while fresh: a planted one shows it was not asked again.
	for k, v := range r.m {
		v.ip = net.IPv4(127, 0, 0, 9)
		r.m[k] = v
	}
	require.Equal(t, "127.0.0.9:4242", r.localAddr(wildcard, dst).String())

	// Once stale, the kernel is asked again.
	for k, v := range r.m {
		v.at = v.at.Add(-routeCacheTTL - time.Second)
		r.m[k] = v
	}
	require.Equal(t, "127.0.0.1:4242", r.localAddr(wildcard, dst).String())
}
