package quicsession

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/session"
)

// testConfig is a config with a fresh credential that trusts any peer.
func testConfig(t *testing.T) *session.Config {
	t.Helper()
	k, err := identity.GenerateKey()
	require.NoError(t, err)
	c, err := certs.NewCredential(k, certs.Options{})
	require.NoError(t, err)
	return &session.Config{Credential: c, Trust: &certs.TrustPolicy{AnyAuthenticated: true}, ALPN: []string{"test"}}
}

// serve accepts every attempt on ln and sends what the peer's first stream carries back on a
// stream of its own, until ln closes.
func serve(t *testing.T, ln session.Listener) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		for {
			in, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := in.Accept(ctx)
			if err != nil {
				cancel()
				continue
			}
			go func() {
				defer cancel()
				defer c.CloseWithError(0, "")
				rs, err := c.AcceptUniStream(ctx)
				if err != nil {
					return
				}
				b, err := io.ReadAll(rs)
				if err != nil {
					return
				}
				ss, err := c.OpenUniStream(ctx)
				if err != nil {
					return
				}
				_, _ = ss.Write(b)
				_ = ss.Close()
				<-c.Context().Done()
			}()
		}
	}()
}

// echo sends msg on a new stream of c and returns what comes back.
func echo(t *testing.T, c session.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.OpenUniStream(ctx)
	require.NoError(t, err)
	_, err = s.Write([]byte(msg))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	rs, err := c.AcceptUniStream(ctx)
	require.NoError(t, err)
	b, err := io.ReadAll(rs)
	require.NoError(t, err)
	return string(b)
}

func TestDialLeavesFromTheListenersSocket(t *testing.T) {
	server := New()
	defer server.Close()
	sln, err := server.Listen("127.0.0.1:0", testConfig(t))
	require.NoError(t, err)
	serve(t, sln)
	defer sln.Close()

	client := New()
	defer client.Close()
	cln, err := client.Listen("127.0.0.1:0", testConfig(t))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, sln.Addr().String(), testConfig(t))
	require.NoError(t, err)
	// The peer sees the address it can dial back, and no second socket was opened.
	require.Equal(t, cln.Addr().String(), c.State().LocalAddr.String())
	client.mu.Lock()
	require.Nil(t, client.dialTr)
	client.mu.Unlock()

	// Closing the listener keeps the socket for the connection dialed from it.
	require.NoError(t, cln.Close())
	require.Equal(t, "still here", echo(t, c, "still here"))

	// A dial after the listener closed leaves from the shared dial socket.
	c2, err := client.Dial(ctx, sln.Addr().String(), testConfig(t))
	require.NoError(t, err)
	require.NotEqual(t, cln.Addr().String(), c2.State().LocalAddr.String())
	require.Equal(t, "other socket", echo(t, c2, "other socket"))
	require.NoError(t, c2.CloseWithError(0, ""))

	// The last connection using the listener's socket closes it.
	port := cln.Addr().(*net.UDPAddr).Port
	require.NoError(t, c.CloseWithError(0, ""))
	require.Eventually(t, func() bool {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return false
		}
		_ = u.Close()
		return true
	}, 5*time.Second, 10*time.Millisecond)
}

func TestFailedDialReleasesTheListenersSocket(t *testing.T) {
	client := New()
	defer client.Close()
	cln, err := client.Listen("127.0.0.1:0", testConfig(t))
	require.NoError(t, err)
	l := cln.(*listener)

	// Nobody listens there: the handshake times out.
	dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer dead.Close()
	cfg := testConfig(t)
	cfg.HandshakeTimeout = 200 * time.Millisecond
	_, err = client.Dial(context.Background(), dead.LocalAddr().String(), cfg)
	require.Error(t, err)
	l.sock.mu.Lock()
	require.Zero(t, l.sock.n)
	l.sock.mu.Unlock()
	require.NoError(t, cln.Close())
	l.sock.mu.Lock()
	require.True(t, l.sock.closed)
	l.sock.mu.Unlock()
}

func TestDialSocketChoice(t *testing.T) {
	v4 := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	v6 := &net.UDPAddr{IP: net.IPv6loopback, Port: 9}
	require.True(t, dualStack.reaches(v4.IP))
	require.True(t, dualStack.reaches(v6.IP))
	require.True(t, ipv4Only.reaches(v4.IP))
	require.False(t, ipv4Only.reaches(v6.IP))
	require.False(t, ipv6Only.reaches(v4.IP))
	require.True(t, ipv6Only.reaches(v6.IP))

	core := New()
	defer core.Close()
	cfg := testConfig(t)

	// A socket bound to one address serves the destinations routed from it, and no others.
	lo, err := core.Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	defer lo.Close()
	tr, release, err := core.dialSocket(v4)
	require.NoError(t, err)
	require.Same(t, lo.(*listener).tr, tr)
	release()
	require.Equal(t, ipv4Only, lo.(*listener).family)
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 7), Port: 9} // loopback to loopback
	tr, release, err = core.dialSocket(other)
	require.NoError(t, err)
	require.Same(t, lo.(*listener).tr, tr)
	release()
	require.Empty(t, core.routes.m, "no route looked up from loopback to loopback")
	if u, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
		_ = u.Close()
		tr, release, err = core.dialSocket(v6)
		require.NoError(t, err)
		require.Nil(t, release)
		require.NotSame(t, lo.(*listener).tr, tr)
	}

	// An IPv4-only wildcard socket serves IPv4 destinations only.
	wcfg := testConfig(t)
	wcfg.SingleStack = true
	w4, err := core.Listen("0.0.0.0:0", wcfg)
	require.NoError(t, err)
	defer w4.Close()
	require.Equal(t, ipv4Only, w4.(*listener).family)
	require.Nil(t, w4.(*listener).bound)
	core.removeListener(lo.(*listener)) // leave only the wildcard one
	tr, release, err = core.dialSocket(v4)
	require.NoError(t, err)
	require.Same(t, w4.(*listener).tr, tr)
	release()
	tr, release, err = core.dialSocket(v6)
	require.NoError(t, err)
	require.Nil(t, release)
	require.NotSame(t, w4.(*listener).tr, tr)
}
