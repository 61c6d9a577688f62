package quicsession_test

import (
	"net"
	"sync"
	"testing"
	"time"
)

// delayProxy forwards UDP datagrams between one client and upstream, each after delay. It
// returns the address clients dial.
func delayProxy(tb testing.TB, upstream net.Addr, delay time.Duration) net.Addr {
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, upstream.(*net.UDPAddr))
	if err != nil {
		tb.Fatal(err)
	}
	_ = front.SetReadBuffer(8 << 20)
	_ = back.SetReadBuffer(8 << 20)
	var (
		mu     sync.Mutex
		client *net.UDPAddr
		wg     sync.WaitGroup
	)
	type datagram struct {
		b   []byte
		due time.Time
	}
	// pump reads datagrams from r and sends each with send once it is due, in order.
	pump := func(read func([]byte) (int, *net.UDPAddr, error), send func([]byte)) {
		q := make(chan datagram, 1<<14)
		wg.Go(func() {
			defer close(q)
			for {
				buf := make([]byte, 64<<10)
				n, from, err := read(buf)
				if err != nil {
					return
				}
				if from != nil {
					mu.Lock()
					client = from
					mu.Unlock()
				}
				select {
				case q <- datagram{buf[:n], time.Now().Add(delay)}:
				default: // queue full: dropped, as a router would
				}
			}
		})
		wg.Go(func() {
			for d := range q {
				time.Sleep(time.Until(d.due))
				send(d.b)
			}
		})
	}
	pump(func(b []byte) (int, *net.UDPAddr, error) { return front.ReadFromUDP(b) },
		func(b []byte) { _, _ = back.Write(b) })
	pump(func(b []byte) (int, *net.UDPAddr, error) { n, err := back.Read(b); return n, nil, err },
		func(b []byte) {
			mu.Lock()
			to := client
			mu.Unlock()
			if to != nil {
				_, _ = front.WriteToUDP(b, to)
			}
		})
	tb.Cleanup(func() { _ = front.Close(); _ = back.Close(); wg.Wait() })
	return front.LocalAddr()
}
