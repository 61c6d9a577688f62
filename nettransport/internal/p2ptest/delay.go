package p2ptest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The delay proxies stand in for `tc netem delay` where the kernel lacks sch_netem: they add
// a fixed one-way delay to every packet (UDP) or every chunk of bytes (TCP) in both
// directions, without loss or bandwidth limits, which is what counting round trips needs.

// delayLine delivers what is pushed into it, in order, each item d after it was pushed (or
// at its own due time, if later).
type delayLine struct {
	items chan delayed
}

type delayed struct {
	data []byte
	due  time.Time
	eof  bool
}

// DelayUDP forwards datagrams between clients and target with one-way delay d each way. It
// returns the proxy's address; the proxy closes with the test.
func DelayUDP(t testing.TB, target string, d time.Duration) string {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	raddr, err := net.ResolveUDPAddr("udp", target)
	require.NoError(t, err)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		upstream = map[string]*net.UDPConn{}
		closed   bool
	)
	send := func(write func([]byte), data []byte) {
		b := append([]byte(nil), data...)
		wg.Add(1)
		time.AfterFunc(d, func() { defer wg.Done(); write(b) })
	}
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				return
			}
			up, ok := upstream[from.String()]
			if !ok {
				up, err = net.DialUDP("udp", nil, raddr)
				if err != nil {
					mu.Unlock()
					continue
				}
				upstream[from.String()] = up
				wg.Go(func() {
					b := make([]byte, 65536)
					for {
						n, err := up.Read(b)
						if err != nil {
							return
						}
						send(func(p []byte) { _, _ = ln.WriteToUDP(p, from) }, b[:n])
					}
				})
			}
			mu.Unlock()
			send(func(p []byte) { _, _ = up.Write(p) }, buf[:n])
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		_ = ln.Close()
		for _, up := range upstream {
			_ = up.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.LocalAddr().String()
}

// DelayTCP forwards TCP connections to target with one-way delay d each way. The client's
// connect completes at once at the proxy, so the first bytes it sends are held until 3d
// after the connection was accepted: when they would reach the server after a real
// handshake (SYN, SYN-ACK, then data: 1.5 round trips). It returns the proxy's address; the
// proxy closes with the test.
func DelayTCP(t testing.TB, target string, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			_ = c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted := time.Now()
			if !track(c) {
				return
			}
			wg.Go(func() {
				up, err := net.Dial("tcp", target)
				if err != nil || !track(up) {
					_ = c.Close()
					return
				}
				pipe(&wg, c, up, d, accepted.Add(2*d))
				pipe(&wg, up, c, d, time.Time{})
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// pipe copies src to dst, each chunk arriving d after it was read (and not before
// notBefore+d), and half-closes dst after src's EOF.
func pipe(wg *sync.WaitGroup, src, dst net.Conn, d time.Duration, notBefore time.Time) {
	line := delayLine{items: make(chan delayed, 1024)}
	wg.Go(func() {
		defer close(line.items)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			now := time.Now()
			if now.Before(notBefore) {
				now = notBefore
			}
			if n > 0 {
				line.items <- delayed{data: buf[:n], due: now.Add(d)}
			}
			if err != nil {
				line.items <- delayed{due: now.Add(d), eof: !errors.Is(err, net.ErrClosed)}
				return
			}
		}
	})
	wg.Go(func() {
		failed := false
		for it := range line.items { // drained to the end, so the reader never blocks
			if failed {
				continue
			}
			time.Sleep(time.Until(it.due))
			if it.data != nil {
				if _, err := dst.Write(it.data); err != nil {
					_ = src.Close()
					failed = true
				}
				continue
			}
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && it.eof {
				_ = cw.CloseWrite()
			} else {
				_ = dst.Close()
			}
		}
	})
}
