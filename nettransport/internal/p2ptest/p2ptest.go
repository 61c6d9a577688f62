// Package p2ptest holds what the libp2p transport tests share: hosts that close with the
// test, and the host-level checks (connect, ping, identify, concurrent echo streams) that the
// QUIC and QMux transports must both pass, against each other and against stock go-libp2p.
package p2ptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// EchoProtocol is served by every host from NewHost: it echoes a stream until its FIN.
const EchoProtocol = protocol.ID("/peerwire/test/echo/1.0.0")

// timeout bounds every host-level operation of a test.
const timeout = 20 * time.Second

// NewHost starts a libp2p host with opts and the user agent agent, serving EchoProtocol; the
// host closes when the test ends. Its resource manager has go-libp2p's default limits, except
// that a peer may open 256 EchoProtocol streams at once (the default is 64).
func NewHost(t testing.TB, agent string, opts ...libp2p.Option) host.Host {
	t.Helper()
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	limits.AddProtocolPeerLimit(EchoProtocol,
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20}, rcmgr.BaseLimitIncrease{})
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	require.NoError(t, err)
	opts = append([]libp2p.Option{libp2p.UserAgent(agent), libp2p.ResourceManager(mgr)}, opts...)
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = mgr.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	h.SetStreamHandler(EchoProtocol, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, s); err != nil {
			_ = s.Reset()
		}
	})
	return h
}

// AddrsWith returns h's addresses whose last protocol is code.
func AddrsWith(h host.Host, code int) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range h.Addrs() {
		if _, last := ma.SplitLast(a); last != nil && last.Code() == code {
			out = append(out, a)
		}
	}
	return out
}

// Connect connects from to to over the addresses of to ending in code only, and returns the
// connection as each side sees it; both run over that protocol.
func Connect(t testing.TB, from, to host.Host, code int) (fromConn, toConn network.Conn) {
	t.Helper()
	addrs := AddrsWith(to, code)
	require.NotEmpty(t, addrs, "%s listens on no address with protocol %d: %v", to.ID(), code, to.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	require.NoError(t, from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: addrs}))
	conns := from.Network().ConnsToPeer(to.ID())
	require.Len(t, conns, 1)
	fromConn = conns[0]
	require.True(t, lastIs(fromConn.RemoteMultiaddr(), code), "dialed %s", fromConn.RemoteMultiaddr())
	require.Eventually(t, func() bool { return len(to.Network().ConnsToPeer(from.ID())) == 1 }, timeout, 10*time.Millisecond)
	toConn = to.Network().ConnsToPeer(from.ID())[0]
	require.True(t, lastIs(toConn.LocalMultiaddr(), code), "accepted on %s", toConn.LocalMultiaddr())
	return fromConn, toConn
}

func lastIs(a ma.Multiaddr, code int) bool {
	_, last := ma.SplitLast(a)
	return last != nil && last.Code() == code
}

// Ping runs the ping protocol from from to to a few times.
func Ping(t testing.TB, from, to host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	results := ping.Ping(ctx, from, to.ID())
	for range 3 {
		select {
		case r := <-results:
			require.NoError(t, r.Error)
			require.Positive(t, r.RTT)
		case <-ctx.Done():
			t.Fatal("ping timed out")
		}
	}
}

// Identified waits until h learned, through identify, p's user agent and that p speaks ping
// and EchoProtocol.
func Identified(t testing.TB, h host.Host, p peer.ID, agent string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := h.Peerstore().Get(p, "AgentVersion")
		require.NoError(c, err)
		require.Equal(c, agent, v)
		protos, err := h.Peerstore().GetProtocols(p)
		require.NoError(c, err)
		require.True(c, slices.Contains(protos, ping.ID), "protocols %v", protos)
		require.True(c, slices.Contains(protos, EchoProtocol), "protocols %v", protos)
	}, timeout, 20*time.Millisecond, "%s", connDiag(h, p))
}

// EchoStreams opens n concurrent streams from from to to, each carrying size random bytes
// that must come back intact.
func EchoStreams(t testing.TB, from, to host.Host, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := echoOnce(ctx, from, to.ID(), size); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func echoOnce(ctx context.Context, h host.Host, p peer.ID, size int) error {
	s, err := h.NewStream(ctx, p, EchoProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	data := make([]byte, size)
	_, _ = rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(data, got) {
		return fmt.Errorf("echo differs: sent %d bytes, got %d", len(data), len(got))
	}
	return nil
}

// connDiag describes h's connections to p, for failure messages.
func connDiag(h host.Host, p peer.ID) string {
	var b bytes.Buffer
	for _, c := range h.Network().ConnsToPeer(p) {
		fmt.Fprintf(&b, "conn %s→%s closed=%v streams=%d; ", c.LocalMultiaddr(), c.RemoteMultiaddr(), c.IsClosed(), len(c.GetStreams()))
		for _, s := range c.GetStreams() {
			fmt.Fprintf(&b, "[%s %s] ", s.Protocol(), s.Stat().Direction)
		}
	}
	return b.String()
}
