//go:build unix

package quicsession

import (
	"context"
	"crypto/tls"
	"net"
	"syscall"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// socketBuffers reads a UDP socket's receive and send buffer sizes.
func socketBuffers(t *testing.T, c *net.UDPConn) (rcv, snd int) {
	t.Helper()
	raw, err := c.SyscallConn()
	require.NoError(t, err)
	var gerr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		if rcv, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); gerr != nil {
			return
		}
		snd, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}))
	require.NoError(t, gerr)
	return rcv, snd
}

// The core gives quic-go plain *net.UDPConn sockets, so quic-go enlarges their buffers as far
// as the system allows, exactly as it does for a socket of its own.
func TestSocketBuffersAsQuicGoSetsThem(t *testing.T) {
	sc := testConfig(t)
	core := New()
	defer core.Close()
	ln, err := core.Listen("127.0.0.1:0", sc)
	require.NoError(t, err)
	defer ln.Close()
	ours := ln.(*listener).tr.Conn.(*net.UDPConn)

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer udp.Close()
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	stc := &tls.Config{Certificates: []tls.Certificate{sc.Credential.TLSCertificate()}, NextProtos: sc.ALPN}
	rawLn, err := tr.Listen(stc, &quic.Config{})
	require.NoError(t, err)
	defer rawLn.Close()

	rcv, snd := socketBuffers(t, ours)
	wantRcv, wantSnd := socketBuffers(t, udp)
	require.Equal(t, wantRcv, rcv)
	require.Equal(t, wantSnd, snd)

	// The dial socket of a core without listeners too.
	dialer := New()
	defer dialer.Close()
	cc := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = dialer.Dial(ctx, ln.Addr().String(), cc) // creates the dial socket
	dialTr, err := dialer.dialTransport()
	require.NoError(t, err)
	rcv, snd = socketBuffers(t, dialTr.Conn.(*net.UDPConn))
	require.Equal(t, wantRcv, rcv)
	require.Equal(t, wantSnd, snd)
}
