package quicsession_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/quicsession"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
)

// refusalDelay is the one-way delay of the proxy that makes a listener's refusal arrive after
// the dialer's handshake completed: the refusal follows the dialer's last flight by a round
// trip.
const refusalDelay = 20 * time.Millisecond

// listenOnce listens with cfg and hands the first connection attempt to decide, whose error
// (nil when it returns none) comes back on the returned channel.
func listenOnce(t *testing.T, cfg *session.Config, decide func(context.Context, session.Incoming) error) (session.Listener, <-chan error) {
	t.Helper()
	core := quicsession.New()
	t.Cleanup(func() { _ = core.Close() })
	ln, err := core.Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	result := make(chan error, 1)
	go func() {
		in, err := ln.Accept(ctx)
		if err == nil {
			err = decide(ctx, in)
		}
		result <- err
	}()
	return ln, result
}

// acceptIt accepts an attempt and closes the connection when the test ends.
func acceptIt(t *testing.T) func(context.Context, session.Incoming) error {
	return func(ctx context.Context, in session.Incoming) error {
		c, err := in.Accept(ctx)
		if err == nil {
			t.Cleanup(func() { _ = c.CloseWithError(0, "") })
		}
		return err
	}
}

// rejectIt rejects an attempt; Accept then reports the rejection.
func rejectIt(ctx context.Context, in session.Incoming) error {
	if err := in.Reject(); err != nil {
		return err
	}
	_, err := in.Accept(ctx)
	return err
}

func dial(t *testing.T, addr string, cfg *session.Config) (session.Conn, error) {
	t.Helper()
	core := quicsession.New()
	t.Cleanup(func() { _ = core.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := core.Dial(ctx, addr, cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.CloseWithError(0, "") })
	}
	return c, err
}

// untrusting makes sc trust nobody we dial with.
func untrusting(t *testing.T, sc *session.Config) {
	sc.Trust = &certs.TrustPolicy{Hashes: []identity.CertHash{sessiontest.Credential(t).Hash()}}
}

// A listener whose trust refuses the dialer sends a certificate alert. Dial returns at the end
// of its own handshake, before the alert arrives (the proxy delays it); the connection then
// closes with a cause that is both the CloseError and a *certs.RejectedByPeerError.
func TestTrustRefusalAfterDialIsTheCause(t *testing.T) {
	cc, sc := sessiontest.Configs(t)
	untrusting(t, sc)
	ln, serverErr := listenOnce(t, sc, acceptIt(t))
	c, err := dial(t, delayProxy(t, ln.Addr(), refusalDelay).String(), cc)
	require.NoError(t, err, "Dial returns once our own handshake is complete")

	cause := sessiontest.Refusal(t, c, nil)
	var byPeer *certs.RejectedByPeerError
	require.ErrorAs(t, cause, &byPeer)
	require.Equal(t, uint8(42), byPeer.Alert, "bad_certificate")
	require.True(t, byPeer.OurHash.Equal(cc.Credential.Hash()))
	var ce *session.CloseError
	require.ErrorAs(t, cause, &ce)
	require.Equal(t, session.ClosedByTransportError, ce.Kind)
	require.Equal(t, uint64(0x100+42), ce.Code)
	require.True(t, ce.Remote)

	var rej *certs.RejectError
	require.ErrorAs(t, <-serverErr, &rej)
	require.Equal(t, certs.ReasonHashNotTrusted, rej.Reason)
}

// Without delay the refusal may come before or after Dial returns; either way it is typed.
func TestClientRejectedByServer(t *testing.T) {
	cc, sc := sessiontest.Configs(t)
	untrusting(t, sc)
	ln, serverErr := listenOnce(t, sc, acceptIt(t))
	c, err := dial(t, ln.Addr().String(), cc)
	var byPeer *certs.RejectedByPeerError
	require.ErrorAs(t, sessiontest.Refusal(t, c, err), &byPeer)
	require.True(t, byPeer.OurHash.Equal(cc.Credential.Hash()))
	require.Equal(t, ln.Addr().String(), byPeer.PeerAddr.String())

	var rej *certs.RejectError
	require.ErrorAs(t, <-serverErr, &rej)
	require.Equal(t, certs.ReasonHashNotTrusted, rej.Reason)
	require.True(t, rej.PeerHash.Equal(cc.Credential.Hash()))
	require.NotNil(t, rej.PeerAddr)
}

// Incoming.Reject lets the handshake complete and closes with CodeRejected: the dialer's
// connection (Dial returned before, the proxy delays the close) ends with a cause matching
// session.ErrRejected, carried as an application close, not a TLS alert.
func TestRejectClosesWithCodeRejected(t *testing.T) {
	cc, sc := sessiontest.Configs(t)
	ln, serverErr := listenOnce(t, sc, rejectIt)
	c, err := dial(t, delayProxy(t, ln.Addr(), refusalDelay).String(), cc)
	require.NoError(t, err)

	cause := sessiontest.Refusal(t, c, nil)
	require.ErrorIs(t, cause, session.ErrRejected)
	var ce *session.CloseError
	require.ErrorAs(t, cause, &ce)
	require.Equal(t, session.ClosedByApplication, ce.Kind)
	require.Equal(t, uint64(session.CodeRejected), ce.Code)
	require.True(t, ce.Remote)
	require.ErrorIs(t, <-serverErr, session.ErrRejected, "Accept after Reject")
}

// A rejecting listener still runs its trust checks: a dialer it does not trust sees its
// certificate refused, not the application's rejection.
func TestRejectStillChecksTrust(t *testing.T) {
	cc, sc := sessiontest.Configs(t)
	untrusting(t, sc)
	ln, _ := listenOnce(t, sc, rejectIt)
	c, err := dial(t, ln.Addr().String(), cc)
	var byPeer *certs.RejectedByPeerError
	require.ErrorAs(t, sessiontest.Refusal(t, c, err), &byPeer)
}

// rawClientTLS is a quic-go client configuration presenting cc's certificate and offering alpn.
func rawClientTLS(cc *session.Config, alpn []string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cc.Credential.TLSCertificate()}, MinVersion: tls.VersionTLS13,
		NextProtos: alpn, InsecureSkipVerify: true} //nolint:gosec // the test checks the listener's ALPN refusal only
}

// A trusted client that offers no ALPN, or none the listener supports, is refused in the
// handshake (no_application_protocol), and the listener's Accept reports a *session.ALPNError.
func TestListenerRefusesClientWithoutCommonALPN(t *testing.T) {
	for name, alpn := range map[string][]string{"none offered": nil, "none in common": {"other"}} {
		t.Run(name, func(t *testing.T) {
			cc, sc := sessiontest.Configs(t)
			ln, serverErr := listenOnce(t, sc, acceptIt(t))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			qc, err := rawTransport(t).Dial(ctx, ln.Addr().(*net.UDPAddr), rawClientTLS(cc, alpn), nil)
			if err == nil {
				_ = qc.CloseWithError(0, "")
			}
			var te *quic.TransportError
			require.ErrorAs(t, err, &te, "the raw client is refused")
			require.Equal(t, quic.TransportErrorCode(0x100+120), te.ErrorCode, "no_application_protocol")

			err = <-serverErr
			var ae *session.ALPNError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, sc.ALPN, ae.Offered)
			require.ErrorIs(t, err, certs.ErrNoApplicationProtocol)
		})
	}
}

// A listener that selects no ALPN, or supports none of ours, fails our Dial with a
// *session.ALPNError.
func TestDialRefusesListenerWithoutCommonALPN(t *testing.T) {
	for name, alpn := range map[string][]string{"none selected": nil, "none in common": {"other"}} {
		t.Run(name, func(t *testing.T) {
			cc, sc := sessiontest.Configs(t)
			stc := &tls.Config{Certificates: []tls.Certificate{sc.Credential.TLSCertificate()}, MinVersion: tls.VersionTLS13,
				NextProtos: alpn, ClientAuth: tls.RequireAnyClientCert}
			ln, err := rawTransport(t).Listen(stc, nil)
			require.NoError(t, err)
			defer ln.Close()
			c, err := dial(t, ln.Addr().String(), cc)
			if err == nil {
				// Never expected: the handshake cannot complete without an ALPN.
				err = sessiontest.Refusal(t, c, nil)
			}
			var ae *session.ALPNError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, cc.ALPN, ae.Offered)
			require.Equal(t, ln.Addr().String(), ae.PeerAddr.String())
			require.True(t, errors.Is(err, certs.ErrNoApplicationProtocol))
		})
	}
}
