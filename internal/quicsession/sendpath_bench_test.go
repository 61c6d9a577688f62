package quicsession_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
)

// The send-path benchmarks measure the QUIC core's send streams the way the stream pool uses
// them: a framed message (4-byte length, payload) is offered to TryWrite first and written with
// Write only when TryWrite declines. "SendPath" streams small messages one way on one
// unidirectional stream (an iteration ends when the receiver read its message); "SendPathRTT"
// bounces a 64-byte message on a bidirectional stream. Each runs on loopback and through a UDP
// proxy that delays every datagram by pathDelay each way.

// pathDelay is the one-way delay the proxy adds (a 50 ms round trip, a long-distance path).
const pathDelay = 25 * time.Millisecond

// writeMsg writes p as the stream pool does: TryWrite when the stream offers it, else Write.
func writeMsg(w io.Writer, p []byte) error {
	if tw, ok := w.(session.TryWriter); ok {
		ok, err := tw.TryWrite(p)
		if err != nil || ok {
			return err
		}
	}
	_, err := w.Write(p)
	return err
}

// paths are the network paths the send-path benchmarks run on.
var paths = []struct {
	name  string
	delay time.Duration
}{{"loopback", 0}, {"delay25ms", pathDelay}}

// connectVia connects a client and a server on two QUIC cores, through a delay proxy when
// delay is not zero.
func connectVia(b *testing.B, delay time.Duration) (client, server session.Conn) {
	cc, sc := sessiontest.Configs(b)
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = 1, 1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lcore, dcore := quicCore().New(), quicCore().New()
	b.Cleanup(func() { _ = lcore.Close(); _ = dcore.Close() })
	ln, err := lcore.Listen("127.0.0.1:0", sc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	addr := ln.Addr()
	if delay > 0 {
		addr = delayProxy(b, addr, delay)
	}
	accepted := make(chan session.Conn, 1)
	go func() {
		defer close(accepted)
		in, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		if c, err := in.Accept(ctx); err == nil {
			accepted <- c
		}
	}()
	client, err = dcore.Dial(ctx, addr.String(), cc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.CloseWithError(0, "") })
	server, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { _ = server.CloseWithError(0, "") })
	return client, server
}

// BenchmarkSendPath streams framed 256-byte messages one way and reports messages per second.
func BenchmarkSendPath(b *testing.B) {
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			client, server := connectVia(b, path.delay)
			ctx := context.Background()
			s, err := client.OpenUniStream(ctx)
			if err != nil {
				b.Fatal(err)
			}
			msg := binary.BigEndian.AppendUint32(nil, 256)
			msg = append(msg, make([]byte, 256)...)
			if err := writeMsg(s, msg); err != nil {
				b.Fatal(err)
			}
			rs, err := server.AcceptUniStream(ctx)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(rs, buf); err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := io.ReadFull(rs, buf); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if err := writeMsg(s, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSendPathRTT bounces a framed 64-byte message over two unidirectional streams,
// one each way as the stream pool uses them, and reports the median round trip.
func BenchmarkSendPathRTT(b *testing.B) {
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			client, server := connectVia(b, path.delay)
			ctx := context.Background()
			msg := binary.BigEndian.AppendUint32(nil, 60)
			msg = append(msg, make([]byte, 60)...)
			// open opens a stream from one side and accepts it on the other.
			open := func(from, to session.Conn) (session.SendStream, session.ReceiveStream) {
				s, err := from.OpenUniStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := writeMsg(s, msg); err != nil {
					b.Fatal(err)
				}
				rs, err := to.AcceptUniStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rs, make([]byte, len(msg))); err != nil {
					b.Fatal(err)
				}
				return s, rs
			}
			cs, sr := open(client, server)
			ss, cr := open(server, client)
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, len(msg))
				for {
					if _, err := io.ReadFull(sr, buf); err != nil {
						done <- err
						return
					}
					if err := writeMsg(ss, buf); err != nil {
						done <- err
						return
					}
				}
			}()
			back := make([]byte, len(msg))
			rtts := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				if err := writeMsg(cs, msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(cr, back); err != nil {
					b.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			_ = cs.Close()
			if err := <-done; !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds())/1e3, "µs-p50")
		})
	}
}
