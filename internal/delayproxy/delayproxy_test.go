package delayproxy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/internal/delayproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const oneWay = 20 * time.Millisecond

// tcpEcho serves a TCP echo on loopback: each connection gets back what it sent, and the
// echo's write side is half-closed after the client's. It stops with the test.
func tcpEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				if _, err := io.Copy(c, c); err == nil {
					_ = c.(*net.TCPConn).CloseWrite()
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// udpEcho answers every datagram with the same datagram; it stops with the test.
func udpEcho(t *testing.T) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	var wg sync.WaitGroup
	require.NoError(t, c.SetReadBuffer(1<<20))
	wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	t.Cleanup(func() { _ = c.Close(); wg.Wait() })
	return c.LocalAddr().String()
}

func startTCP(t *testing.T, target string) *delayproxy.Proxy {
	p, err := delayproxy.TCP(target, oneWay)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func startUDP(t *testing.T, target string) *delayproxy.Proxy {
	p, err := delayproxy.UDP(target, oneWay)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// The first echo through the TCP proxy takes the emulated handshake (1.5 round trips until
// the first bytes arrive) and half a round trip back; the next takes one round trip.
func TestTCPDelaysEachDirection(t *testing.T) {
	p := startTCP(t, tcpEcho(t))
	start := time.Now()
	c, err := net.Dial("tcp", p.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	buf := make([]byte, 5)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))
	require.GreaterOrEqual(t, time.Since(start), 4*oneWay)

	start = time.Now()
	_, err = c.Write([]byte("again"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "again", string(buf))
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 2*oneWay)
	require.Less(t, took, 4*oneWay, "the handshake's hold applies to the first bytes only")
}

// Many megabytes arrive intact and in order, and a half-close travels both ways: the client
// reads the whole echo, then the end of the stream.
func TestTCPCarriesBulkAndHalfClose(t *testing.T) {
	p := startTCP(t, tcpEcho(t))
	c, err := net.Dial("tcp", p.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	require.True(t, bytes.Equal(data, got), "echo differs")
}

// A target that refuses the proxy's connection closes the client's.
func TestTCPTargetRefusedClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	target := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := startTCP(t, target)
	c, err := net.Dial("tcp", p.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
}

// Datagrams take one delay each way, arrive in order, and each client gets its own answers.
func TestUDPDelaysEachDirectionInOrder(t *testing.T) {
	p := startUDP(t, udpEcho(t))
	clients := make([]*net.UDPConn, 2)
	for i := range clients {
		c, err := net.DialUDP("udp", nil, p.Addr().(*net.UDPAddr))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetReadBuffer(1<<20)) // holds every answer until read
		clients[i] = c
	}
	buf := make([]byte, 64)
	start := time.Now()
	_, err := clients[0].Write([]byte("ping"))
	require.NoError(t, err)
	n, err := clients[0].Read(buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf[:n]))
	require.GreaterOrEqual(t, time.Since(start), 2*oneWay)

	const count = 200
	for i := range count {
		for k, c := range clients {
			_, err := c.Write(binary.BigEndian.AppendUint32([]byte{byte(k)}, uint32(i)))
			require.NoError(t, err)
		}
	}
	for k, c := range clients {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		for i := range count {
			n, err := c.Read(buf)
			require.NoError(t, err)
			require.Equal(t, binary.BigEndian.AppendUint32([]byte{byte(k)}, uint32(i)), buf[:n])
		}
	}
}

// Close ends an open TCP connection mid-transfer and the UDP flows, drops what is queued
// without waiting for it to be due, and returns once every goroutine ended (TestMain checks
// for leaks); it may be called again.
func TestCloseEndsEverything(t *testing.T) {
	tp, err := delayproxy.TCP(tcpEcho(t), oneWay)
	require.NoError(t, err)
	up, err := delayproxy.UDP(udpEcho(t), time.Hour)
	require.NoError(t, err)

	c, err := net.Dial("tcp", tp.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	u, err := net.DialUDP("udp", nil, up.Addr().(*net.UDPAddr))
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write([]byte("queued"))
	require.NoError(t, err)

	// The echo answers as long as the proxy runs; the writer stops once it no longer can.
	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			err = io.EOF
		}
		readErr <- err
	}()
	writeErr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	require.NoError(t, up.Close())
	require.NoError(t, tp.Close())
	require.NoError(t, tp.Close(), "a second Close")
	require.Error(t, <-readErr)
	require.Error(t, <-writeErr)
	_, err = net.Dial("tcp", tp.Addr().String())
	require.Error(t, err, "the listener is closed")
	_ = u.SetReadDeadline(time.Now().Add(2 * oneWay))
	_, err = u.Read(make([]byte, 64))
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "the queued datagram was dropped, not delivered: %v", err)
}
