package nettransport

import (
	"net"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"
)

func TestSplitAddr(t *testing.T) {
	for _, tc := range []struct {
		in, hostport string
		core         Core
	}{
		{"/ip4/127.0.0.1/udp/4001/quic-v1", "127.0.0.1:4001", QUIC},
		{"/ip6/::1/udp/0/quic-v1", "[::1]:0", QUIC},
		{"/dns/localhost/udp/9/quic-v1", "localhost:9", QUIC},
		{"/ip4/127.0.0.1/tcp/4001/qmux", "127.0.0.1:4001", QMux},
		{"/ip6/::1/tcp/5/qmux", "[::1]:5", QMux},
	} {
		core, hp, err := splitAddr(ma.StringCast(tc.in))
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.core, core)
		require.Equal(t, tc.hostport, hp)
	}
	for _, bad := range []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/1/qmux", "/ip4/127.0.0.1/udp/1", "/ip4/127.0.0.1/udp/1/quic", "/ip4/1.2.3.4/udp/1/quic-v1/p2p-circuit", "/unix/tmp"} {
		_, _, err := splitAddr(ma.StringCast(bad))
		var ae *AddrError
		require.ErrorAs(t, err, &ae, bad)
		require.Contains(t, ae.Error(), bad)
	}
}

func TestToMultiaddr(t *testing.T) {
	m, err := toMultiaddr(QUIC, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242})
	require.NoError(t, err)
	require.Equal(t, "/ip4/127.0.0.1/udp/4242/quic-v1", m.String())
	m, err = toMultiaddr(QUIC, &net.UDPAddr{IP: net.IPv6loopback, Port: 1})
	require.NoError(t, err)
	require.Equal(t, "/ip6/::1/udp/1/quic-v1", m.String())
	m, err = toMultiaddr(QMux, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7})
	require.NoError(t, err)
	require.Equal(t, "/ip4/127.0.0.1/tcp/7/qmux", m.String())
}
