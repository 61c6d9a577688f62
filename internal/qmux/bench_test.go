package qmux

// Session-level benchmarks over loopback TCP and TLS 1.3, directly and through a proxy that
// delays every byte (a link with real delay): a 64-byte request/response round trip on one
// stream, and a bulk transfer on one unidirectional stream.

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/delayproxy"
	"github.com/peerwire/peerwire/internal/session"
)

// benchDelay is the one-way delay of the delayed cases.
const benchDelay = 5 * time.Millisecond

// benchConns connects a client and a server over loopback, through a delay proxy when delay
// is not zero.
func benchConns(b *testing.B, delay time.Duration) (client, server session.Conn) {
	cc, sc := tlsConfigs(b)
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = 10, 10
	core, ln := listen(b, sc)
	addr := ln.Addr().String()
	if delay > 0 {
		addr = delayProxy(b, addr, delay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
	client, err := core.Dial(ctx, addr, cc)
	require.NoError(b, err)
	b.Cleanup(func() { _ = client.CloseWithError(0, "") })
	server = <-accepted
	require.NotNil(b, server)
	b.Cleanup(func() { _ = server.CloseWithError(0, "") })
	return client, server
}

// delayProxy starts a TCP delay proxy (internal/delayproxy) in front of target, adding delay
// each way, and returns its address. It closes with the benchmark.
func delayProxy(b *testing.B, target string, delay time.Duration) string {
	p, err := delayproxy.TCP(target, delay)
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.Close() })
	return p.Addr().String()
}

func BenchmarkRoundTrip(b *testing.B) {
	b.Run("loopback", func(b *testing.B) { benchRoundTrip(b, 0) })
	b.Run("delay", func(b *testing.B) { benchRoundTrip(b, benchDelay) })
}

// benchRoundTrip measures a 64-byte request and its 64-byte answer on one stream.
func benchRoundTrip(b *testing.B, delay time.Duration) {
	client, server := benchConns(b, delay)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := server.AcceptStream(ctx)
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	s, err := client.OpenStream(ctx)
	require.NoError(b, err)
	buf := make([]byte, 64)
	for b.Loop() {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
	_ = client.CloseWithError(0, "")
	<-done
}

func BenchmarkBulk(b *testing.B) {
	b.Run("loopback", func(b *testing.B) { benchBulk(b, 0) })
	b.Run("delay", func(b *testing.B) { benchBulk(b, benchDelay) })
}

// benchBulk measures a one-way transfer in 16 KiB writes on one unidirectional stream; an
// op is one write, and the time includes the last byte's arrival.
func benchBulk(b *testing.B, delay time.Duration) {
	const size = 16 << 10
	client, server := benchConns(b, delay)
	ctx := context.Background()
	got := make(chan int64, 1)
	go func() {
		s, err := server.AcceptUniStream(ctx)
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, s)
		got <- n
	}()
	s, err := client.OpenUniStream(ctx)
	require.NoError(b, err)
	buf := make([]byte, size)
	b.SetBytes(size)
	var sent int64
	for b.Loop() {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		sent += size
	}
	require.NoError(b, s.Close())
	require.Equal(b, sent, <-got)
}
