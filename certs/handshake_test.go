package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

type handshakeResult struct {
	server, client       tls.ConnectionState
	serverErr, clientErr error
	serverAddr           net.Addr // as seen by the client
	clientAddr           net.Addr // as seen by the server
}

// handshake runs one TLS handshake over loopback TCP and then exchanges a
// byte each way, so that a rejection the client learns of only after its side
// of the TLS 1.3 handshake completed (the server refusing the client's
// certificate) still surfaces as the client's error.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	var res handshakeResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			res.serverErr = err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		res.clientAddr = conn.RemoteAddr()
		tc := tls.Server(conn, serverCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			res.serverErr = err
			return
		}
		res.server = tc.ConnectionState()
		if _, err := tc.Write([]byte{1}); err != nil {
			res.serverErr = err
			return
		}
		var b [1]byte
		if _, err := io.ReadFull(tc, b[:]); err != nil {
			res.serverErr = err
		}
	}()

	func() {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			res.clientErr = err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		res.serverAddr = conn.RemoteAddr()
		tc := tls.Client(conn, clientCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			res.clientErr = err
			return
		}
		res.client = tc.ConnectionState()
		var b [1]byte
		if _, err := io.ReadFull(tc, b[:]); err != nil {
			res.clientErr = err
			return
		}
		if _, err := tc.Write([]byte{1}); err != nil {
			res.clientErr = err
		}
	}()
	<-done
	return res
}

func TestHandshakeMutualTrustAndALPN(t *testing.T) {
	srv, cli := newCred(t, newKey(t)), newCred(t, newKey(t))
	res := handshake(t,
		ServerConfig(srv, &TrustPolicy{Hashes: []identity.CertHash{cli.Hash()}}, []string{"yy1", "zzz", "bbb", "ccc"}),
		ClientConfig(cli, &TrustPolicy{Keys: []identity.PublicKey{srv.IdentityKey().Public()}}, []string{"xxx", "yyy", "bbb", "ccc"}),
	)
	require.NoError(t, res.serverErr)
	require.NoError(t, res.clientErr)
	require.Equal(t, "bbb", res.server.NegotiatedProtocol)
	require.Equal(t, "bbb", res.client.NegotiatedProtocol)
	require.Equal(t, uint16(tls.VersionTLS13), res.client.Version)
	require.False(t, res.client.DidResume)

	// Each side sees the other's certificate.
	require.Len(t, res.server.PeerCertificates, 1)
	require.Equal(t, cli.Hash(), identity.HashCertificate(res.server.PeerCertificates[0].Raw))
	require.Equal(t, srv.Hash(), identity.HashCertificate(res.client.PeerCertificates[0].Raw))
}

func TestHandshakeServerRejectsClient(t *testing.T) {
	srv, cli := newCred(t, newKey(t)), newCred(t, newKey(t))
	trusted := newKey(t).Public()
	res := handshake(t,
		ServerConfig(srv, &TrustPolicy{Keys: []identity.PublicKey{trusted}}, []string{"p"}),
		ClientConfig(cli, &TrustPolicy{AnyAuthenticated: true}, []string{"p"}),
	)

	re := requireReject(t, res.serverErr, ReasonKeysNotTrusted)
	require.Equal(t, cli.Hash(), re.PeerHash)
	require.Equal(t, cli.IdentityKeys(), re.PresentedKeys)
	require.Equal(t, []identity.PublicKey{trusted}, re.TrustedKeys)

	// The transport adds the address the TLS callback could not know.
	require.True(t, SetPeerAddr(res.serverErr, res.clientAddr))
	require.Contains(t, res.serverErr.Error(), "peer ("+res.clientAddr.String()+") certificate rejected: identity keys not trusted")

	// The client learns of it from the server's alert.
	require.Error(t, res.clientErr)
	alert, ok := PeerAlert(res.clientErr)
	require.True(t, ok, "client error: %v", res.clientErr)
	require.Equal(t, uint8(42), alert)
	require.True(t, IsCertificateAlert(alert))
	rp := NewRejectedByPeerError(cli, res.serverAddr, alert, res.clientErr)
	require.ErrorIs(t, rp, ErrCertificateRejected)
	require.Equal(t, "my certificate was rejected by peer ("+res.serverAddr.String()+"): bad_certificate; my certificate "+
		cli.Hash().Short()+"… is signed by keys [ed25519:"+cli.IdentityKey().Public().Short()+"]", rp.Error())
}

func TestHandshakeClientRejectsServer(t *testing.T) {
	srv, cli := newCred(t, newKey(t)), newCred(t, newKey(t))
	trusted := identity.HashCertificate([]byte("some other certificate"))
	res := handshake(t,
		ServerConfig(srv, &TrustPolicy{AnyAuthenticated: true}, []string{"p"}),
		ClientConfig(cli, &TrustPolicy{Hashes: []identity.CertHash{trusted}}, []string{"p"}),
	)

	re := requireReject(t, res.clientErr, ReasonHashNotTrusted)
	require.Equal(t, srv.Hash(), re.PeerHash)
	require.Equal(t, []identity.CertHash{trusted}, re.TrustedHashes)

	alert, ok := PeerAlert(res.serverErr)
	require.True(t, ok, "server error: %v", res.serverErr)
	require.Equal(t, uint8(42), alert)
	var notOurs *RejectError
	require.False(t, errors.As(res.serverErr, &notOurs), "the server did not reject anything")
}

func TestHandshakeCoSignerTrust(t *testing.T) {
	cosigner := newKey(t)
	srv := newCred(t, newKey(t), cosigner)
	cli := newCred(t, newKey(t))
	res := handshake(t,
		ServerConfig(srv, &TrustPolicy{AnyAuthenticated: true}, []string{"p"}),
		ClientConfig(cli, &TrustPolicy{Keys: []identity.PublicKey{cosigner.Public()}}, []string{"p"}),
	)
	require.NoError(t, res.clientErr)
	require.NoError(t, res.serverErr)
}

func TestHandshakeServerWithoutALPN(t *testing.T) {
	srv, cli := newCred(t, newKey(t)), newCred(t, newKey(t))
	anyPeer := &TrustPolicy{AnyAuthenticated: true}
	res := handshake(t, ServerConfig(srv, anyPeer, nil), ClientConfig(cli, anyPeer, []string{"p"}))
	require.ErrorIs(t, res.clientErr, ErrNoApplicationProtocol)
	require.Error(t, res.serverErr)
}

func TestHandshakeALPNMismatch(t *testing.T) {
	srv, cli := newCred(t, newKey(t)), newCred(t, newKey(t))
	anyPeer := &TrustPolicy{AnyAuthenticated: true}
	res := handshake(t, ServerConfig(srv, anyPeer, []string{"a"}), ClientConfig(cli, anyPeer, []string{"b"}))
	require.Error(t, res.serverErr)
	alert, ok := PeerAlert(res.clientErr)
	require.True(t, ok, "client error: %v", res.clientErr)
	require.Equal(t, "no_application_protocol", AlertName(alert))
	require.False(t, IsCertificateAlert(alert))
}

func TestConfigProperties(t *testing.T) {
	c := newCred(t, newKey(t))
	p := &TrustPolicy{AnyAuthenticated: true}
	alpn := []string{"a", "b"}
	for name, cfg := range map[string]*tls.Config{
		"server": ServerConfig(c, p, alpn),
		"client": ClientConfig(c, p, alpn),
	} {
		require.Equal(t, uint16(tls.VersionTLS13), cfg.MinVersion, name)
		require.Equal(t, uint16(tls.VersionTLS13), cfg.MaxVersion, name)
		require.True(t, cfg.SessionTicketsDisabled, name)
		require.Equal(t, alpn, cfg.NextProtos, name)
		require.NotNil(t, cfg.VerifyConnection, name)
		require.Len(t, cfg.Certificates, 1, name)
	}
	require.Equal(t, tls.RequireAnyClientCert, ServerConfig(c, p, alpn).ClientAuth)
	require.True(t, ClientConfig(c, p, alpn).InsecureSkipVerify)

	// The configuration keeps its own copies.
	cfg := ServerConfig(c, p, alpn)
	alpn[0] = "changed"
	require.Equal(t, "a", cfg.NextProtos[0])

	require.Panics(t, func() { ServerConfig(nil, p, alpn) })
	require.Panics(t, func() { ClientConfig(c, nil, alpn) })
}

func TestConfigSnapshotsPolicy(t *testing.T) {
	srv, cli := newCred(t, newKey(t)), newCred(t, newKey(t))
	p := &TrustPolicy{Keys: []identity.PublicKey{cli.IdentityKey().Public()}}
	serverCfg := ServerConfig(srv, p, []string{"p"})
	p.Keys = nil // later edits do not reach the configuration
	res := handshake(t, serverCfg, ClientConfig(cli, &TrustPolicy{AnyAuthenticated: true}, []string{"p"}))
	require.NoError(t, res.serverErr)
	require.NoError(t, res.clientErr)
}

// A client without a certificate is refused by crypto/tls itself
// (RequireAnyClientCert) before VerifyConnection runs: the server's error is
// crypto/tls's, and the client receives certificate_required.
func TestHandshakeClientWithoutCertificate(t *testing.T) {
	srv := newCred(t, newKey(t))
	res := handshake(t,
		ServerConfig(srv, &TrustPolicy{AnyAuthenticated: true}, []string{"p"}),
		&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{"p"}},
	)
	require.Error(t, res.serverErr)
	alert, ok := PeerAlert(res.clientErr)
	require.True(t, ok, "client error: %v", res.clientErr)
	require.Equal(t, "certificate_required", AlertName(alert))
	require.True(t, IsCertificateAlert(alert))
}
