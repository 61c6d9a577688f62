package p2ptransport_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/sec"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/qmux"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/nettransport/internal/p2ptransport"
	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
	"github.com/peerwire/peerwire/nettransport/libp2pquic"
)

func TestConnIdentityAndAddresses(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, acc := connect(t, k, a, b)

		require.Equal(t, b.id, d.LocalPeer())
		require.Equal(t, a.id, d.RemotePeer())
		require.True(t, d.RemotePublicKey().Equals(a.key.GetPublic()))
		require.Equal(t, a.id, acc.LocalPeer())
		require.Equal(t, b.id, acc.RemotePeer())
		require.True(t, acc.RemotePublicKey().Equals(b.key.GetPublic()))

		require.Equal(t, d.LocalMultiaddr().String(), acc.RemoteMultiaddr().String())
		for _, m := range []ma.Multiaddr{d.LocalMultiaddr(), d.RemoteMultiaddr(), acc.LocalMultiaddr(), acc.RemoteMultiaddr()} {
			require.True(t, b.CanDial(m), "%s is not an address of the transport", m)
		}
		want := map[string]string{"quic": "quic-v1", "qmux": "qmux"}[k.name]
		require.Equal(t, want, d.ConnState().Transport)
		require.Equal(t, want, acc.ConnState().Transport)
		require.Same(t, b.Transport, d.Transport())
		require.Same(t, a.Transport, acc.Transport())
		require.NotNil(t, d.Scope())

		require.False(t, d.IsClosed())
		require.NoError(t, d.Close())
		require.True(t, d.IsClosed())
		require.Eventually(t, acc.IsClosed, 5*time.Second, 10*time.Millisecond)
	})
}

func TestAs(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, _ := connect(t, k, a, b)

		var cs tls.ConnectionState
		require.True(t, d.As(&cs))
		require.Equal(t, uint16(tls.VersionTLS13), cs.Version)
		wantALPN := map[string]string{"quic": "libp2p", "qmux": qmux.ALPN("libp2p")}[k.name]
		require.Equal(t, wantALPN, cs.NegotiatedProtocol)

		var pc *certs.PeerCertificate
		require.True(t, d.As(&pc))
		require.Equal(t, a.id, pc.PeerID.Libp2p())

		var sc session.Conn
		require.True(t, d.As(&sc))
		require.Equal(t, k.name, sc.State().Core)

		var qc *quic.Conn
		require.Equal(t, k.name == "quic", d.As(&qc), "**quic.Conn only on the QUIC core")
		if k.name == "quic" {
			require.Equal(t, "libp2p", qc.ConnectionState().TLS.NegotiatedProtocol)
		}
		var nope *net.TCPConn
		require.False(t, d.As(&nope))
	})
}

func TestStreamResetWithErrorVisibleToPeer(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, acc := connect(t, k, a, b)
		s, r := streamPair(t, d, acc)

		require.NoError(t, s.ResetWithError(42))
		_, err := io.ReadAll(r)
		var se *network.StreamError
		require.ErrorAs(t, err, &se)
		require.Equal(t, network.StreamErrorCode(42), se.ErrorCode)
		require.True(t, se.Remote)
		require.ErrorIs(t, err, network.ErrReset)

		// The peer's writes fail once our STOP_SENDING arrives.
		require.Eventually(t, func() bool {
			_, err := r.Write([]byte("x"))
			return errors.As(err, &se) && se.ErrorCode == 42 && se.Remote
		}, 5*time.Second, 5*time.Millisecond)

		// Our own side reports a local reset.
		_, err = s.Write([]byte("x"))
		require.ErrorAs(t, err, &se)
		require.False(t, se.Remote)
	})
}

func TestCloseWithErrorVisibleToPeer(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, acc := connect(t, k, a, b)
		_, r := streamPair(t, d, acc)

		require.NoError(t, d.CloseWithError(77))
		_, err := acc.AcceptStream()
		var ce *network.ConnError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, network.ConnErrorCode(77), ce.ErrorCode)
		require.True(t, ce.Remote)
		require.ErrorIs(t, err, net.ErrClosed)

		_, err = io.ReadAll(r)
		require.ErrorAs(t, err, &ce)
		require.Equal(t, network.ConnErrorCode(77), ce.ErrorCode)

		_, err = d.OpenStream(context.Background())
		require.ErrorAs(t, err, &ce)
		require.False(t, ce.Remote)
		require.Eventually(t, acc.IsClosed, 5*time.Second, 10*time.Millisecond)
	})
}

// TestStreamClose checks go-libp2p's QUIC semantics: Close sends what was written and a FIN,
// and stops reading (the peer's writes fail with a reset of code 0).
func TestStreamClose(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, acc := connect(t, k, a, b)
		s, r := streamPair(t, d, acc)

		_, err := s.Write([]byte("bye"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, "bye", string(got))

		var se *network.StreamError
		require.Eventually(t, func() bool {
			_, err := r.Write([]byte("x"))
			return errors.As(err, &se) && se.ErrorCode == 0 && se.Remote
		}, 5*time.Second, 5*time.Millisecond)
	})
}

func TestStreamHalfClose(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, acc := connect(t, k, a, b)
		s, r := streamPair(t, d, acc)

		require.NoError(t, s.CloseWrite())
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = r.Write([]byte("still open"))
		require.NoError(t, err)
		require.NoError(t, r.CloseWrite())
		got, err = io.ReadAll(s)
		require.NoError(t, err)
		require.Equal(t, "still open", string(got))

		// CloseRead: our reads end, the peer's writes fail.
		s2, r2 := streamPair(t, d, acc)
		require.NoError(t, r2.CloseRead())
		var se *network.StreamError
		require.Eventually(t, func() bool {
			_, err := s2.Write([]byte("x"))
			return errors.As(err, &se) && se.Remote
		}, 5*time.Second, 5*time.Millisecond)
		_, err = r2.Write([]byte("the other way works"))
		require.NoError(t, err)
	})
}

func TestStreamDeadlines(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		d, acc := connect(t, k, a, b)
		s, r := streamPair(t, d, acc)

		require.NoError(t, r.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, err := r.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())

		// The stream still works after the deadline is lifted.
		require.NoError(t, r.SetDeadline(time.Time{}))
		_, err = s.Write([]byte("late"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(r, buf)
		require.NoError(t, err)
		require.Equal(t, "late", string(buf))
		require.NoError(t, s.SetWriteDeadline(time.Now().Add(time.Second)))
	})
}

func TestPeerIDMismatch(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		_, other := newKey(t)
		l := listen(t, a, k)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := b.Dial(ctx, l.Multiaddr(), other)
		var mismatch sec.ErrPeerIDMismatch
		require.ErrorAs(t, err, &mismatch)
		require.Equal(t, other, mismatch.Expected)
		require.Equal(t, a.id, mismatch.Actual)
		require.ErrorIs(t, err, certs.ErrCertificateRejected)
	})
}

func TestDialRefusesNonEd25519Peer(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		l := listen(t, a, k)
		sk, _, err := ic.GenerateSecp256k1Key(rand.Reader)
		require.NoError(t, err)
		p, err := peer.IDFromPrivateKey(sk)
		require.NoError(t, err)
		_, err = b.Dial(context.Background(), l.Multiaddr(), p)
		require.ErrorContains(t, err, "Ed25519")
	})
}

func TestConstructorRefusals(t *testing.T) {
	key, _ := newKey(t)
	psk := pnet.PSK(make([]byte, 32))
	_, err := libp2pquic.NewTransport(key, psk, nil, nil)
	require.ErrorIs(t, err, libp2pquic.ErrPrivateNetwork)
	_, err = libp2pqmux.NewTransport(key, psk, nil, nil)
	require.ErrorIs(t, err, libp2pqmux.ErrPrivateNetwork)

	ecdsa, _, err := ic.GenerateECDSAKeyPair(rand.Reader)
	require.NoError(t, err)
	_, err = libp2pquic.NewTransport(ecdsa, nil, nil, nil)
	require.ErrorIs(t, err, libp2pquic.ErrKeyType)
	_, err = libp2pqmux.NewTransport(ecdsa, nil, nil, nil)
	require.ErrorIs(t, err, p2ptransport.ErrKeyType)
}

func TestCanDialAndProtocols(t *testing.T) {
	key, _ := newKey(t)
	q, err := libp2pquic.NewTransport(key, nil, nil, nil)
	require.NoError(t, err)
	defer q.(interface{ Close() error }).Close()
	x, err := libp2pqmux.NewTransport(key, nil, nil, nil)
	require.NoError(t, err)
	defer x.(interface{ Close() error }).Close()

	require.Equal(t, []int{ma.P_QUIC_V1}, q.Protocols())
	require.Equal(t, []int{libp2pqmux.P_QMUX}, x.Protocols())
	require.False(t, q.Proxy())
	require.False(t, x.Proxy())
	for addr, want := range map[string][2]bool{ // quic, qmux
		"/ip4/1.2.3.4/udp/1/quic-v1":              {true, false},
		"/ip6/::1/udp/1/quic-v1":                  {true, false},
		"/ip4/1.2.3.4/tcp/1/qmux":                 {false, true},
		"/ip6/::1/tcp/1/qmux":                     {false, true},
		"/ip4/1.2.3.4/udp/1/quic":                 {false, false},
		"/ip4/1.2.3.4/tcp/1":                      {false, false},
		"/ip4/1.2.3.4/udp/1":                      {false, false},
		"/dns4/example.com/udp/1/quic-v1":         {false, false},
		"/dns4/example.com/tcp/1/qmux":            {false, false},
		"/ip4/1.2.3.4/udp/1/quic-v1/webtransport": {false, false},
		"/ip4/1.2.3.4/tcp/1/qmux/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA": {false, false},
	} {
		require.Equal(t, want[0], q.CanDial(ma.StringCast(addr)), "quic %s", addr)
		require.Equal(t, want[1], x.CanDial(ma.StringCast(addr)), "qmux %s", addr)
	}
}

func TestGaterInterceptAccept(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		g := &gater{denyAccept: true}
		a, b := newNode(t, k, g, nil), newNode(t, k, nil, nil)
		l := listen(t, a, k)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The listener refuses after the handshake, with the application close code
		// CodeRejected (go-libp2p's QUIC transport also gates accepted connections after
		// their handshake).
		require.ErrorIs(t, dialRefusal(ctx, t, b, l.Multiaddr(), a.id), session.ErrRejected)
		g.mu.Lock()
		defer g.mu.Unlock()
		require.Len(t, g.accepted, 1)
		require.Equal(t, l.Multiaddr().String(), g.accepted[0].LocalMultiaddr().String())
		require.True(t, b.CanDial(g.accepted[0].RemoteMultiaddr()))
		require.Empty(t, g.secured)
	})
}

func TestGaterInterceptSecured(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		t.Run("inbound", func(t *testing.T) {
			g := &gater{denySecuredIn: true}
			a, b := newNode(t, k, g, nil), newNode(t, k, nil, nil)
			l := listen(t, a, k)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := b.Dial(ctx, l.Multiaddr(), a.id)
			if err == nil {
				// The dialer may see the handshake complete before the listener's verdict
				// closes the connection with ConnGated.
				defer c.Close()
				_, err = c.AcceptStream()
				var ce *network.ConnError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, network.ConnGated, ce.ErrorCode)
				require.True(t, ce.Remote)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			require.Equal(t, []peer.ID{b.id}, g.secured)
		})
		t.Run("outbound", func(t *testing.T) {
			g := &gater{denySecuredOut: true}
			a, b := newNode(t, k, nil, nil), newNode(t, k, g, nil)
			l := listen(t, a, k)
			accepted := make(chan tpt.CapableConn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := b.Dial(ctx, l.Multiaddr(), a.id)
			require.ErrorContains(t, err, "gated")
			// On QUIC the dialer's verdict can reach the listener before its own handshake
			// completes, and then no connection comes out of Accept at all; one that does is
			// closed with ConnGated.
			select {
			case c := <-accepted:
				require.NotNil(t, c)
				defer c.Close()
				_, err = c.AcceptStream()
				var ce *network.ConnError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, network.ConnGated, ce.ErrorCode)
				require.True(t, ce.Remote)
			case <-time.After(time.Second):
				require.Equal(t, "quic", k.name, "QMux listeners complete their handshake first")
			}
		})
	})
}

func TestResourceManagerScopes(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		fd := map[string]string{"quic": "", "qmux": " fd"}[k.name]
		ra, rb := &rcmgr{}, &rcmgr{}
		a, b := newNode(t, k, nil, ra), newNode(t, k, nil, rb)
		d, acc := connect(t, k, a, b)
		require.Equal(t, []string{"open Outbound" + fd, "set peer " + a.id.String()}, rb.Events())
		require.Equal(t, []string{"open Inbound" + fd, "set peer " + b.id.String()}, ra.Events())
		require.NoError(t, d.Close())
		require.NoError(t, d.Close())
		require.Equal(t, "done", rb.Events()[2])
		require.Len(t, rb.Events(), 3, "Done exactly once")
		require.NoError(t, acc.Close())
		require.Equal(t, []string{"open Inbound" + fd, "set peer " + b.id.String(), "done"}, ra.Events())
	})
}

func TestResourceManagerRefusals(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		t.Run("inbound connection", func(t *testing.T) {
			r := &rcmgr{refuseOpen: true}
			a, b := newNode(t, k, nil, r), newNode(t, k, nil, nil)
			l := listen(t, a, k)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.ErrorIs(t, dialRefusal(ctx, t, b, l.Multiaddr(), a.id), session.ErrRejected)
		})
		t.Run("inbound peer", func(t *testing.T) {
			r := &rcmgr{refuseSetPeer: true}
			a, b := newNode(t, k, nil, r), newNode(t, k, nil, nil)
			l := listen(t, a, k)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := b.Dial(ctx, l.Multiaddr(), a.id)
			if err == nil {
				defer c.Close()
				_, err = c.AcceptStream()
				var ce *network.ConnError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, network.ConnResourceLimitExceeded, ce.ErrorCode)
			}
			require.Eventually(t, func() bool {
				e := r.Events()
				return len(e) == 3 && e[2] == "done"
			}, 5*time.Second, 10*time.Millisecond)
		})
		t.Run("outbound", func(t *testing.T) {
			r := &rcmgr{refuseOpen: true}
			a, b := newNode(t, k, nil, nil), newNode(t, k, nil, r)
			l := listen(t, a, k)
			_, err := b.Dial(context.Background(), l.Multiaddr(), a.id)
			require.ErrorIs(t, err, network.ErrResourceLimitExceeded)

			r.refuseOpen, r.refuseSetPeer = false, true
			_, err = b.Dial(context.Background(), l.Multiaddr(), a.id)
			require.ErrorIs(t, err, network.ErrResourceLimitExceeded)
			e := r.Events()
			require.Equal(t, []string{"set peer " + a.id.String(), "done"}, e[len(e)-2:], "scope ended, no handshake")
		})
	})
}

func TestTransportCloseEndsEverything(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		l := listen(t, a, k)
		d, acc := connect(t, k, a, b)
		require.NoError(t, a.Transport.(interface{ Close() error }).Close())
		require.True(t, acc.IsClosed())
		_, err := l.Accept()
		require.ErrorIs(t, err, tpt.ErrListenerClosed)
		require.Eventually(t, d.IsClosed, 5*time.Second, 10*time.Millisecond)
		_, err = a.Listen(ma.StringCast(k.listen))
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

// TestIPv4AndIPv6ListenersShareAPort: /ip4/0.0.0.0/udp/P and /ip6/::/udp/P are two
// listeners, as with go-libp2p, each reached over its own family.
func TestIPv4AndIPv6ListenersShareAPort(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		if k.name == "qmux" {
			t.Skip("the QMux core binds wildcard addresses dual-stack (session.Config.SingleStack not supported yet)")
		}
		a, b := newNode(t, k, nil, nil), newNode(t, k, nil, nil)
		l4, err := a.Listen(ma.StringCast("/ip4/0.0.0.0/udp/0/quic-v1"))
		require.NoError(t, err)
		defer l4.Close()
		port, err := l4.Multiaddr().ValueForProtocol(ma.P_UDP)
		require.NoError(t, err)
		l6, err := a.Listen(ma.StringCast("/ip6/::/udp/" + port + "/quic-v1"))
		require.NoError(t, err)
		defer l6.Close()
		for _, tc := range []struct {
			l    tpt.Listener
			dial string
		}{{l4, "/ip4/127.0.0.1/udp/" + port + "/quic-v1"}, {l6, "/ip6/::1/udp/" + port + "/quic-v1"}} {
			accepted := make(chan error, 1)
			go func() {
				c, err := tc.l.Accept()
				if err == nil {
					_ = c.Close()
				}
				accepted <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := b.Dial(ctx, ma.StringCast(tc.dial), a.id)
			cancel()
			require.NoError(t, err, tc.dial)
			require.NoError(t, <-accepted)
			_ = c.Close()
		}
	})
}
