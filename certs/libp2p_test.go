package certs

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

// libp2pCert returns the certificate go-libp2p generates for sk.
func libp2pCert(t testing.TB, sk ic.PrivKey) *x509.Certificate {
	t.Helper()
	lid, err := libp2ptls.NewIdentity(sk)
	require.NoError(t, err)
	conf, _ := lid.ConfigForPeer("")
	require.Len(t, conf.Certificates, 1)
	cert, err := x509.ParseCertificate(conf.Certificates[0].Certificate[0])
	require.NoError(t, err)
	return cert
}

func TestLibp2pAcceptsOurCertificate(t *testing.T) {
	id := newKey(t)
	c := newCred(t, id)
	// PubKeyFromCertChain edits the certificate's UnhandledCriticalExtensions,
	// so give it a parse of its own.
	leaf, err := x509.ParseCertificate(c.Leaf().Raw)
	require.NoError(t, err)

	pk, err := libp2ptls.PubKeyFromCertChain([]*x509.Certificate{leaf})
	require.NoError(t, err)
	require.True(t, pk.Equals(id.Public().Libp2p()))
	pid, err := peer.IDFromPublicKey(pk)
	require.NoError(t, err)
	require.Equal(t, c.PeerID().Libp2p(), pid)
}

func TestLibp2pAcceptsCoSignedCertificate(t *testing.T) {
	id := newKey(t)
	c := newCred(t, id, newKey(t), newKey(t))
	leaf, err := x509.ParseCertificate(c.Leaf().Raw)
	require.NoError(t, err)

	pk, err := libp2ptls.PubKeyFromCertChain([]*x509.Certificate{leaf})
	require.NoError(t, err)
	require.True(t, pk.Equals(id.Public().Libp2p()), "libp2p sees the primary key")
}

func TestWeAcceptLibp2pCertificate(t *testing.T) {
	sk, pk, err := ic.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	cert := libp2pCert(t, sk)

	pc, err := ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	require.NoError(t, err)
	want, err := identity.PublicKeyFromLibp2p(pk)
	require.NoError(t, err)
	require.Equal(t, []identity.PublicKey{want}, pc.Keys)
	wantID, err := peer.IDFromPublicKey(pk)
	require.NoError(t, err)
	require.Equal(t, wantID, pc.PeerID.Libp2p())
	require.Equal(t, identity.HashCertificate(cert.Raw), pc.Hash)
}

func TestLibp2pCertificateWithNonEd25519Key(t *testing.T) {
	sk, _, err := ic.GenerateSecp256k1Key(rand.Reader)
	require.NoError(t, err)
	_, err = ParsePeerCertificate([]*x509.Certificate{libp2pCert(t, sk)}, time.Now())
	requireReject(t, err, ReasonNoIdentityKey)
}

// TestHandshakeWithLibp2p runs TLS handshakes between our configurations and
// go-libp2p's, in both roles, with ALPN "libp2p".
func TestHandshakeWithLibp2p(t *testing.T) {
	sk, pk, err := ic.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	lid, err := libp2ptls.NewIdentity(sk)
	require.NoError(t, err)
	theirKey, err := identity.PublicKeyFromLibp2p(pk)
	require.NoError(t, err)

	ours := newCred(t, newKey(t), newKey(t))
	policy := &TrustPolicy{Keys: []identity.PublicKey{theirKey}}
	alpn := []string{"libp2p"}

	check := func(t *testing.T, keyCh <-chan ic.PubKey, ourErr, theirErr error, ourState tls.ConnectionState) {
		require.NoError(t, ourErr)
		require.NoError(t, theirErr)
		require.Equal(t, "libp2p", ourState.NegotiatedProtocol)
		select {
		case got := <-keyCh:
			require.True(t, got.Equals(ours.IdentityKey().Public().Libp2p()))
		case <-time.After(5 * time.Second):
			t.Fatal("libp2p did not report our key")
		}
	}

	t.Run("we dial", func(t *testing.T) {
		theirCfg, keyCh := lid.ConfigForPeer(ours.PeerID().Libp2p())
		res := handshake(t, theirCfg, ClientConfig(ours, policy, alpn))
		check(t, keyCh, res.clientErr, res.serverErr, res.client)
	})
	t.Run("libp2p dials", func(t *testing.T) {
		theirCfg, keyCh := lid.ConfigForPeer(ours.PeerID().Libp2p())
		res := handshake(t, ServerConfig(ours, policy, alpn), theirCfg)
		check(t, keyCh, res.serverErr, res.clientErr, res.server)
	})
	t.Run("libp2p expects another peer", func(t *testing.T) {
		other := newKey(t).Public().PeerID().Libp2p()
		theirCfg, _ := lid.ConfigForPeer(other)
		res := handshake(t, theirCfg, ClientConfig(ours, policy, alpn))
		require.Error(t, res.serverErr)
		alert, ok := PeerAlert(res.clientErr)
		require.True(t, ok, "client error %v", res.clientErr)
		require.True(t, IsCertificateAlert(alert))
	})
}
