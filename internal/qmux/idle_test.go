package qmux

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/internal/delayproxy"
	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

func TestIdleTimeoutWithSilentPeer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ours, peer time.Duration // ours < 0: disabled; peer 0: not advertised
		want       time.Duration
	}{
		{"peer's is smaller", 5 * time.Second, 3 * time.Second, 3 * time.Second},
		{"ours is smaller", 2 * time.Second, 10 * time.Second, 2 * time.Second},
		{"peer advertises none", 2 * time.Second, 0, 2 * time.Second},
		{"ours disabled", -1, 4 * time.Second, 4 * time.Second},
		{"peer's below the 1s minimum", 5 * time.Second, 30 * time.Millisecond, minIdleTimeout},
		{"ours below the 1s minimum", 200 * time.Millisecond, 0, minIdleTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.IdleTimeout = tc.ours // keep-alives stay disabled
				p := newPeer(t, cfg, false)
				tp := peerParams()
				tp.MaxIdleTimeout = tc.peer
				p.handshake(tp)
				start := time.Now()
				ce := p.closeErr()
				require.Equal(t, tc.want, time.Since(start))
				require.Equal(t, &session.CloseError{Kind: session.ClosedByIdleTimeout}, ce)
				require.True(t, ce.Timeout())
				p.expectEOF() // and no CONNECTION_CLOSE
			})
		})
	}
}

func TestNoIdleTimeoutWhenBothDisable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		time.Sleep(time.Hour)
		require.NoError(t, p.c.Context().Err())
	})
}

func TestIdleTimerRestartsOnReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.IdleTimeout = 2 * time.Second
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		for range 10 {
			time.Sleep(1500 * time.Millisecond)
			p.send(&wire.PaddingFrame{Count: 1})
		}
		synctest.Wait()
		require.NoError(t, p.c.Context().Err())
		start := time.Now()
		p.closeErr()
		require.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestKeepAliveKeepsResponsivePeerAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.IdleTimeout = 4 * time.Second
		cfg.KeepAlivePeriod = time.Second
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		start := time.Now()
		for seq := uint64(1); seq <= 30; seq++ {
			ping := expectFrame[*wire.PingFrame](p, nil)
			require.Equal(t, &wire.PingFrame{Sequence: seq}, ping)
			require.Equal(t, time.Duration(seq)*time.Second, time.Since(start), "keep-alive period")
			p.send(&wire.PingFrame{Response: true, Sequence: seq})
		}
		require.NoError(t, p.c.Context().Err(), "alive after 30 s, with a 4 s idle timeout")
	})
}

func TestKeepAlivePeriodCappedAtHalfTheIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.KeepAlivePeriod = time.Minute
		p := newPeer(t, cfg, false)
		tp := peerParams()
		tp.MaxIdleTimeout = 30 * time.Millisecond // as the deployed stack: raised to 1 s
		p.handshake(tp)
		start := time.Now()
		ping := expectFrame[*wire.PingFrame](p, nil)
		require.False(t, ping.Response)
		require.Equal(t, minIdleTimeout/2, time.Since(start))
		p.send(&wire.PingFrame{Response: true, Sequence: ping.Sequence})
	})
}

func TestKeepAliveDoesNotHideSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.IdleTimeout = 4 * time.Second
		cfg.KeepAlivePeriod = time.Second
		p := newPeer(t, cfg, false)
		p.handshake(peerParams())
		start := time.Now()
		// Our own keep-alives restart the idle timer only once after the last receipt
		// (RFC 9000 §10.1): a peer that never answers is detected within idle + keep-alive.
		// (The timer restarts at the receipt of the peer's parameters or, if our own went out
		// after it, then; the first keep-alive may restart it once more.)
		ce := p.closeErr()
		require.Equal(t, session.ClosedByIdleTimeout, ce.Kind)
		require.GreaterOrEqual(t, time.Since(start), cfg.IdleTimeout)
		require.LessOrEqual(t, time.Since(start), cfg.IdleTimeout+cfg.KeepAlivePeriod)
		require.NotEmpty(t, sent[*wire.PingFrame](p), "keep-alives were sent")
		p.waitEOF()
		require.Empty(t, sent[*wire.ConnectionCloseFrame](p))
	})
}

// The TLS handshake's duration seeds the round-trip estimate that window auto-tuning uses,
// on both sides: through a link with 25 ms each way it is at least the 50 ms round trip, not
// the 1 ms default that would keep the windows from growing until a keep-alive is answered.
func TestHandshakeSeedsRoundTrip(t *testing.T) {
	const oneWay = 25 * time.Millisecond
	cc, sc := tlsConfigs(t)
	core, ln := listen(t, sc)
	proxy, err := delayproxy.TCP(ln.Addr().String(), oneWay)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan *conn, 1)
	go func() {
		defer close(accepted)
		if in, err := ln.Accept(ctx); err == nil {
			if c, err := in.Accept(ctx); err == nil {
				accepted <- c.(*conn)
			}
		}
	}()
	sc2, err := core.Dial(ctx, proxy.Addr().String(), cc)
	require.NoError(t, err)
	client := sc2.(*conn)
	server, ok := <-accepted
	require.True(t, ok, "accept failed")
	for side, c := range map[string]*conn{"dialer": client, "listener": server} {
		c.mu.Lock()
		rtt := c.idle.rtt
		c.mu.Unlock()
		require.GreaterOrEqual(t, rtt, 2*oneWay, "%s's round-trip estimate", side)
	}
}
