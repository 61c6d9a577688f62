// Package delayproxy stands in for `tc netem delay` where the kernel lacks sch_netem: a Proxy
// listens on loopback and forwards UDP datagrams (UDP) or TCP connections (TCP) to a target,
// adding a fixed one-way delay to every datagram or every chunk of bytes in each direction,
// without loss, reordering or a bandwidth limit. A round trip through it costs twice the
// delay, which is what counting a protocol's round trips needs.
//
// Usage: start a proxy in front of a listener, dial the proxy's Addr instead of the
// listener's, and Close the proxy when done:
//
//	p, err := delayproxy.UDP(ln.LocalAddr().String(), 25*time.Millisecond)
//	...
//	defer p.Close()
//	conn, err := quic.DialAddr(ctx, p.Addr().String(), ...)
//
// Limitations. The TCP proxy ends each TCP connection and opens another to the target: the
// client's connect completes at once, so the proxy holds the client's first bytes until they
// would have reached the server after a real three-way handshake (1.5 round trips after the
// connect), but the kernels' TCP windows and congestion control on either side see loopback,
// not the delay. Only flow control above TCP (a multiplexer's stream windows) feels the
// delay. Each direction holds at most a bounded queue (udpQueue datagrams, tcpQueue chunks of
// up to tcpChunk bytes); beyond it the proxy stops reading, so TCP pushes back and UDP
// datagrams queue in, and beyond that are dropped by, the proxy's socket buffer, as at a full
// router queue. The UDP proxy opens one socket towards the target per client address and
// keeps it until Close.
package delayproxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Queue bounds: what one direction of one flow holds in flight. At 25 ms of delay, udpQueue
// full-size QUIC datagrams (1,452 B) let about 900 MB/s through, tcpQueue chunks 1.3 GB/s:
// more than loopback carries on the machines this runs on, so the queue is no bandwidth limit.
const (
	udpQueue = 1 << 14
	tcpQueue = 1 << 10
	tcpChunk = 32 << 10
	// socketBuffer is the UDP socket buffer size the proxy asks for (the kernel may cap it
	// at net.core.rmem_max and wmem_max).
	socketBuffer = 4 << 20
)

// Proxy is a running delay proxy. Close stops it.
type Proxy struct {
	addr net.Addr
	done chan struct{} // closed by Close: the queues stop delivering

	mu     sync.Mutex
	closed bool
	open   map[io.Closer]struct{} // the listener and every socket, closed by Close

	wg   sync.WaitGroup
	once sync.Once
}

func newProxy() *Proxy {
	return &Proxy{done: make(chan struct{}), open: make(map[io.Closer]struct{})}
}

// Addr is the address clients dial to reach the target through the proxy.
func (p *Proxy) Addr() net.Addr { return p.addr }

// Close stops the proxy: it closes the listening socket and every connection and socket it
// opened, drops what was still queued, and returns once every goroutine of the proxy ended.
// It returns nil, also when called again.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		close(p.done)
		for c := range p.open {
			_ = c.Close()
		}
		clear(p.open)
		p.mu.Unlock()
		p.wg.Wait()
	})
	return nil
}

// track registers c to be closed by Close; once the proxy is closed it closes c instead and
// returns false.
func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

// release closes c and forgets it.
func (p *Proxy) release(c io.Closer) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	_ = c.Close()
}

// item is one datagram or chunk in a queue, or (eof) the end of a TCP byte stream.
type item struct {
	data []byte
	due  time.Time
	eof  bool
}

// queue starts a goroutine that hands what is sent on the returned channel to deliver, in
// order, each item at its due time. The sender closes the channel when it has no more; the
// goroutine then ends, calling ended if it is not nil. Once deliver returns false, or the proxy is closed, the
// goroutine drops the rest unseen, but keeps draining the channel so that its sender never
// blocks for ever.
func (p *Proxy) queue(capacity int, deliver func(item) bool, ended func()) chan<- item {
	items := make(chan item, capacity)
	p.wg.Go(func() {
		if ended != nil {
			defer ended()
		}
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		stopped := false
		for it := range items {
			if stopped {
				continue
			}
			if wait := time.Until(it.due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-p.done:
					stopped = true
					continue
				}
			}
			stopped = !deliver(it)
		}
	})
	return items
}

// UDP starts a proxy on 127.0.0.1 that forwards datagrams from each client to target, and
// the target's answers back to that client, each oneWay after the proxy received it.
func UDP(target string, oneWay time.Duration) (*Proxy, error) {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	setBuffers(ln)
	p := newProxy()
	p.addr = ln.LocalAddr()
	p.track(ln)
	p.wg.Go(func() {
		// flows belongs to this goroutine: the queue towards the target of each client.
		flows := make(map[netip.AddrPort]chan<- item)
		defer func() {
			for _, q := range flows {
				close(q)
			}
		}()
		buf := make([]byte, 1<<16)
		for {
			n, from, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			due := time.Now().Add(oneWay)
			q, ok := flows[from]
			if !ok {
				if q, ok = p.udpFlow(ln, from, raddr, oneWay); !ok {
					continue
				}
				flows[from] = q
			}
			q <- item{data: append([]byte(nil), buf[:n]...), due: due}
		}
	})
	return p, nil
}

// udpFlow opens the socket towards raddr for the client at from and starts the reader of
// the target's answers; it returns the queue towards the target.
func (p *Proxy) udpFlow(ln *net.UDPConn, from netip.AddrPort, raddr *net.UDPAddr, oneWay time.Duration) (chan<- item, bool) {
	up, err := net.DialUDP("udp", nil, raddr)
	if err != nil || !p.track(up) {
		return nil, false
	}
	setBuffers(up)
	// A datagram that cannot be sent is lost, as on a network; only the proxy's own close
	// stops a queue.
	toTarget := p.queue(udpQueue, func(it item) bool {
		_, err := up.Write(it.data)
		return !errors.Is(err, net.ErrClosed)
	}, nil)
	back := p.queue(udpQueue, func(it item) bool {
		_, err := ln.WriteToUDPAddrPort(it.data, from)
		return !errors.Is(err, net.ErrClosed)
	}, nil)
	p.wg.Go(func() {
		defer close(back)
		buf := make([]byte, 1<<16)
		for {
			n, err := up.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue // an ICMP error from the target (port unreachable) reported on read
			}
			back <- item{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(oneWay)}
		}
	})
	return toTarget, true
}

func setBuffers(c *net.UDPConn) {
	_ = c.SetReadBuffer(socketBuffer)
	_ = c.SetWriteBuffer(socketBuffer)
}

// TCP starts a proxy on 127.0.0.1 that forwards each TCP connection to a new connection to
// target, every chunk of bytes in either direction oneWay after the proxy read it. A client's
// first bytes are held until 3×oneWay after its connect, when they would reach the server
// after a real handshake (SYN, SYN-ACK, then data). An end's close or half-close reaches the
// other end oneWay later.
func TCP(target string, oneWay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := newProxy()
	p.addr = ln.Addr()
	p.track(ln)
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted := time.Now()
			if !p.track(c) {
				return
			}
			p.wg.Go(func() {
				var d net.Dialer
				up, err := d.Dial("tcp", target)
				if err != nil || !p.track(up) {
					p.release(c)
					return
				}
				// The two sockets are released once both directions ended: a reader and a
				// queue each.
				var ended sync.WaitGroup
				ended.Add(4)
				p.wg.Go(func() {
					ended.Wait()
					p.release(c)
					p.release(up)
				})
				p.pipe(c, up, oneWay, accepted.Add(2*oneWay), ended.Done)
				p.pipe(up, c, oneWay, time.Time{}, ended.Done)
			})
		}
	})
	return p, nil
}

// pipe copies src to dst, each chunk arriving oneWay after it was read (and not before
// notBefore+oneWay). After src's end of file it half-closes dst; after another read error it
// closes dst. A failed write closes src, which ends the reader. Each of the pipe's two
// goroutines calls ended as it ends.
func (p *Proxy) pipe(src, dst net.Conn, oneWay time.Duration, notBefore time.Time, ended func()) {
	deliver := func(it item) bool {
		if it.data != nil {
			if _, err := dst.Write(it.data); err != nil {
				_ = src.Close()
				return false
			}
			return true
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && it.eof {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		return true
	}
	q := p.queue(tcpQueue, deliver, ended)
	p.wg.Go(func() {
		defer ended()
		defer close(q)
		for {
			buf := make([]byte, tcpChunk)
			n, err := src.Read(buf)
			now := time.Now()
			if now.Before(notBefore) {
				now = notBefore
			}
			if n > 0 {
				q <- item{data: buf[:n], due: now.Add(oneWay)}
			}
			if err != nil {
				q <- item{due: now.Add(oneWay), eof: errors.Is(err, io.EOF)}
				return
			}
		}
	})
}
