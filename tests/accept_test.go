package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/nettransport"
)

// rawListener is a listener of one core that completes the handshake (its trust policy
// accepts the dialer) but runs no stream pool: it says nothing after the handshake unless the
// test writes to the connection, like a listener that is not peerwire.
type rawListener struct {
	ln   session.Listener
	addr ma.Multiaddr
}

// listenRaw listens on core f with sc, trusting cc; the listener is closed with the test.
func listenRaw(t *testing.T, f sessiontest.CoreFactory, sc, cc *certs.Credential) *rawListener {
	t.Helper()
	core := f.New()
	cfg := &session.Config{Credential: sc, Trust: &certs.TrustPolicy{Hashes: []identity.CertHash{cc.Hash()}}, ALPN: []string{"test/1"}}
	ln, err := core.Listen(f.Addr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = ln.Close()
		_ = core.Close()
	})
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	proto := map[string]string{"quic": "udp/%s/quic-v1", "qmux": "tcp/%s/qmux"}[f.Name]
	return &rawListener{ln: ln, addr: ma.StringCast("/ip4/127.0.0.1/" + fmt.Sprintf(proto, port))}
}

// acceptRaw accepts the next connection attempt in the background; the connection is closed
// with the test.
func (l *rawListener) acceptRaw(t *testing.T, ctx context.Context) <-chan session.Conn {
	t.Helper()
	ch := make(chan session.Conn, 1)
	go func() {
		defer close(ch)
		in, err := l.ln.Accept(ctx)
		if err != nil {
			return
		}
		c, err := in.Accept(ctx)
		if err != nil {
			return
		}
		ch <- c
	}()
	t.Cleanup(func() {
		if c, ok := <-ch; ok {
			_ = c.CloseWithError(0, "")
		}
	})
	return ch
}

// A listener that completes the handshake but never sends ACCEPTED (not a peerwire
// listener) makes Dial fail after the stream timeout with a *TimeoutError naming the missing
// acceptance; one that sends it, late, makes Dial return then.
func TestDialWaitsForAccepted(t *testing.T) {
	for _, f := range sessiontest.Cores() {
		t.Run(f.Name, func(t *testing.T) {
			ctx := testCtx(t)
			cc, sc := newCert(t), newCert(t)
			l := listenRaw(t, f, sc, cc)
			const timeout = 500 * time.Millisecond
			tr := newTransport(t, nettransport.Config{StreamTimeout: timeout})

			// Never accepted.
			got := l.acceptRaw(t, ctx)
			start := time.Now()
			_, err := tr.Dial(ctx, l.addr, []string{"test/1"}, trusting(cc, sc))
			var te *nettransport.TimeoutError
			require.ErrorAs(t, err, &te)
			require.Contains(t, te.Op, "ACCEPTED")
			require.Equal(t, timeout, te.After)
			require.GreaterOrEqual(t, time.Since(start), timeout)
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			require.True(t, ne.Timeout())
			raw := <-got
			require.NotNil(t, raw, "the listener's handshake completed")

			// Accepted after a while: Dial returns once ACCEPTED arrived, not before.
			got = l.acceptRaw(t, ctx)
			dialed := make(chan error, 1)
			var conn nettransport.Connection
			go func() {
				var err error
				conn, err = tr.Dial(ctx, l.addr, []string{"test/1"}, trusting(cc, sc))
				dialed <- err
			}()
			raw = <-got
			require.NotNil(t, raw)
			select {
			case err := <-dialed:
				t.Fatalf("Dial returned (%v) before ACCEPTED", err)
			case <-time.After(timeout / 4):
			}
			st, err := raw.OpenUniStream(ctx)
			require.NoError(t, err)
			_, err = st.Write([]byte{0x01, 0x01}) // a control stream carrying ACCEPTED
			require.NoError(t, err)
			require.NoError(t, st.Close())
			require.NoError(t, <-dialed)
			require.NoError(t, conn.Err())
			_ = conn.CloseWithError(0, "")
		})
	}
}

// A listener that rejects the dialer after the dialer's own handshake makes Dial fail with
// ErrRejected, whether the core reports the refusal in its Dial or as the connection's close
// cause (an application close with CodeRejected).
func TestDialRejectedAfterHandshake(t *testing.T) {
	for _, f := range sessiontest.Cores() {
		t.Run(f.Name, func(t *testing.T) {
			ctx := testCtx(t)
			cc, sc := newCert(t), newCert(t)
			l := listenRaw(t, f, sc, cc)
			tr := newTransport(t, nettransport.Config{})
			got := l.acceptRaw(t, ctx)
			go func() {
				if raw, ok := <-got; ok {
					_ = raw.CloseWithError(session.CodeRejected, "rejected")
				}
			}()
			_, err := tr.Dial(ctx, l.addr, []string{"test/1"}, trusting(cc, sc))
			require.ErrorIs(t, err, nettransport.ErrRejected)
		})
	}
}

// Messages the listener sends right after Accept returns all reach the dialer, in order,
// though they may arrive before ACCEPTED: the dialer's pool holds them until Dial returns.
func TestMessagesRightAfterAcceptArriveInOrder(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		str := newTransport(t, nettransport.Config{})
		ctr := newTransport(t, nettransport.Config{})
		l, err := str.Listen(listen, []string{"test/1"}, trusting(sc, cc))
		require.NoError(t, err)
		const n = 500
		sent := make(chan error, 1)
		go func() {
			sent <- func() error {
				in, err := l.Accept(ctx)
				if err != nil {
					return err
				}
				c, err := in.Accept(ctx)
				if err != nil {
					return err
				}
				for i := range n {
					if err := c.Send(ctx, fmt.Appendf(nil, "m%d", i)); err != nil {
						return err
					}
				}
				return c.Close()
			}()
		}()
		c, err := ctr.Dial(ctx, l.Addr(), []string{"test/1"}, trusting(cc, sc))
		require.NoError(t, err)
		defer c.CloseWithError(0, "")
		for i := range n {
			got, _, err := c.Recv(ctx)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("m%d", i), string(got))
		}
		require.NoError(t, <-sent)
		_, _, err = c.Recv(ctx)
		var ce *nettransport.CloseError
		require.ErrorAs(t, err, &ce)
		require.False(t, errors.Is(err, nettransport.ErrRejected))
	})
}
