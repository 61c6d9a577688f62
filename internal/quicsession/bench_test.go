package quicsession_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
)

// The benchmarks here measure the QUIC core through the session interface beside raw quic-go
// doing the same work in the same run (sub-benchmarks "peerwire" and "quic-go"), so that the
// core's own cost can be read as a ratio: handshakes (the dial returns, as quic-go's does, at
// the end of our own handshake, with our check of the listener's certificate), one-way messages on one stream (allocations with
// -benchmem are process-wide, both ends included) and round trips. The raw reference skips
// certificate verification, as the bench harness's does.

// rawTLS returns quic-go reference configurations using the certificates of cc and sc.
func rawTLS(cc, sc *session.Config) (client, server *tls.Config) {
	server = &tls.Config{Certificates: []tls.Certificate{sc.Credential.TLSCertificate()}, MinVersion: tls.VersionTLS13,
		NextProtos: sc.ALPN, ClientAuth: tls.RequireAnyClientCert}
	client = &tls.Config{Certificates: []tls.Certificate{cc.Credential.TLSCertificate()}, MinVersion: tls.VersionTLS13,
		NextProtos: cc.ALPN, InsecureSkipVerify: true} //nolint:gosec // reference measurement on loopback
	return client, server
}

// rawTransport is a quic-go transport on its own loopback socket, closed (synchronously, with
// every connection on it) when the test ends. quic.ListenAddr and quic.DialAddr would close
// theirs only once their closed connections finished draining, after the test.
func rawTransport(tb testing.TB) *quic.Transport {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	tb.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	return tr
}

// peerwireDialer listens with the QUIC core and returns a function that dials once (the
// listener's application accepting) and closes the connection.
func peerwireDialer(b *testing.B) func() {
	cc, sc := sessiontest.Configs(b)
	core := quicCore().New()
	ln, err := core.Listen("127.0.0.1:0", sc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				if c, err := in.Accept(ctx); err == nil {
					<-c.Context().Done()
				}
			})
		}
	})
	b.Cleanup(func() { cancel(); _ = ln.Close(); _ = core.Close(); wg.Wait() })
	addr := ln.Addr().String()
	return func() {
		c, err := core.Dial(ctx, addr, cc)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.CloseWithError(0, "")
	}
}

// rawDialer is peerwireDialer with quic-go alone.
func rawDialer(b *testing.B) func() {
	cc, sc := sessiontest.Configs(b)
	ctc, stc := rawTLS(cc, sc)
	lnTr := rawTransport(b)
	ln, err := lnTr.Listen(stc, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	tr := rawTransport(b)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Go(func() { <-c.Context().Done() })
		}
	})
	b.Cleanup(func() { _ = ln.Close(); _ = lnTr.Close(); wg.Wait() })
	return func() {
		c, err := tr.Dial(context.Background(), ln.Addr(), ctc, &quic.Config{})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.CloseWithError(0, "")
	}
}

// BenchmarkHandshake dials repeatedly. Sub-benchmarks "peerwire" and "quic-go" give each
// system's figures with allocations; "alternating" runs blocks of dials of each in turn and
// reports the ratio of their median rates, which holds up on a busy machine.
func BenchmarkHandshake(b *testing.B) {
	b.Run("peerwire", func(b *testing.B) {
		dial := peerwireDialer(b)
		for b.Loop() {
			dial()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
	})
	b.Run("quic-go", func(b *testing.B) {
		dial := rawDialer(b)
		for b.Loop() {
			dial()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
	})
	b.Run("alternating", func(b *testing.B) {
		alternating(b, peerwireDialer(b), rawDialer(b), "conns/s")
	})
}

// alternating runs a block of blockOps operations of pw, then a block of raw, per iteration,
// and reports both median rates and the ratio peerwire ÷ quic-go. Blocks rather than single
// operations: a dial leaves work behind (the listener finishing its side, which raw quic-go's
// dialer does not wait for), and alternating one by one would bill it to the other system.
func alternating(b *testing.B, pw, raw func(), unit string) {
	const blockOps = 20
	block := func(op func()) time.Duration {
		start := time.Now()
		for range blockOps {
			op()
		}
		return time.Since(start) / blockOps
	}
	var tp, tr []time.Duration
	for b.Loop() {
		tp, tr = append(tp, block(pw)), append(tr, block(raw))
	}
	p, r := median(tp), median(tr)
	b.ReportMetric(1/p.Seconds(), "peerwire-"+unit)
	b.ReportMetric(1/r.Seconds(), "quic-go-"+unit)
	b.ReportMetric(r.Seconds()/p.Seconds(), "ratio")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// streamPair is one stream between a client and a server. The client's reader and the
// server's writer are nil for a unidirectional stream.
type streamPair struct {
	cw io.WriteCloser
	cr io.Reader
	sr io.Reader
	sw io.Writer
}

func peerwireStreams(b *testing.B, bidi bool) streamPair {
	cc, sc := sessiontest.Configs(b)
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = 1, 1
	p := sessiontest.Connect(b, quicCore(), cc, sc)
	ctx := context.Background()
	if bidi {
		s, err := p.Client.OpenStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write([]byte{0}); err != nil {
			b.Fatal(err)
		}
		rs, err := p.Server.AcceptStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rs, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		return streamPair{cw: s, cr: s, sr: rs, sw: rs}
	}
	s, err := p.Client.OpenUniStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Write([]byte{0}); err != nil {
		b.Fatal(err)
	}
	rs, err := p.Server.AcceptUniStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(rs, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return streamPair{cw: s, sr: rs}
}

func rawStreams(b *testing.B, bidi bool) streamPair {
	cc, sc := sessiontest.Configs(b)
	ctc, stc := rawTLS(cc, sc)
	ln, err := rawTransport(b).Listen(stc, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	ctx := context.Background()
	c, err := rawTransport(b).Dial(ctx, ln.Addr(), ctc, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.CloseWithError(0, "") })
	s, err := ln.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.CloseWithError(0, "") })
	if bidi {
		cs, err := c.OpenStreamSync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cs.Write([]byte{0}); err != nil {
			b.Fatal(err)
		}
		ss, err := s.AcceptStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(ss, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		return streamPair{cw: cs, cr: cs, sr: ss, sw: ss}
	}
	cs, err := c.OpenUniStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cs.Write([]byte{0}); err != nil {
		b.Fatal(err)
	}
	ss, err := s.AcceptUniStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(ss, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return streamPair{cw: cs, sr: ss}
}

var systems = []struct {
	name    string
	streams func(*testing.B, bool) streamPair
}{
	{"peerwire", peerwireStreams},
	{"quic-go", rawStreams},
}

// BenchmarkMessage sends length-prefixed messages one way on one stream; an iteration ends
// when the receiver has read the message.
func BenchmarkMessage(b *testing.B) {
	for _, size := range []int{256, 1 << 20} {
		for _, sys := range systems {
			b.Run(sizeName(size)+"/"+sys.name, func(b *testing.B) {
				p := sys.streams(b, false)
				msg := binary.BigEndian.AppendUint32(nil, uint32(size))
				msg = append(msg, make([]byte, size)...)
				buf := make([]byte, len(msg))
				done := make(chan error, 1)
				b.SetBytes(int64(size))
				b.ResetTimer()
				go func() {
					for range b.N {
						if _, err := io.ReadFull(p.sr, buf); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				for range b.N {
					if _, err := p.cw.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "1MiB"
	}
	return "256B"
}

// BenchmarkRTT bounces a 64-byte message on a bidirectional stream and reports the median
// round trip.
func BenchmarkRTT(b *testing.B) {
	for _, sys := range systems {
		b.Run(sys.name, func(b *testing.B) {
			p := sys.streams(b, true)
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(p.sr, buf); err != nil {
						done <- err
						return
					}
					if _, err := p.sw.Write(buf); err != nil {
						done <- err
						return
					}
				}
			}()
			msg, back := make([]byte, 64), make([]byte, 64)
			rtts := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				if _, err := p.cw.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(p.cr, back); err != nil {
					b.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			_ = p.cw.Close()
			if err := <-done; err != io.EOF {
				b.Fatal(err)
			}
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds())/1e3, "µs-p50")
		})
	}
}
