package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

func newKey(t testing.TB) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey()
	require.NoError(t, err)
	return k
}

func newCred(t testing.TB, id identity.PrivateKey, cosigners ...identity.PrivateKey) *Credential {
	t.Helper()
	c, err := NewCredential(id, Options{CoSigners: cosigners})
	require.NoError(t, err)
	return c
}

func chainOf(c *Credential) []*x509.Certificate { return []*x509.Certificate{c.Leaf()} }

// craft builds a self-signed certificate for a fresh P-256 key with the
// extensions that mk returns for that key's SPKI, for testing malformed and
// forged certificates that NewCredential would never produce.
func craft(t testing.TB, mk func(spki []byte) []pkix.Extension) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "crafted"},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(time.Hour),
		ExtraExtensions: mk(spki),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

func libp2pExt(t testing.TB, k identity.PrivateKey, spki []byte) pkix.Extension {
	t.Helper()
	v, err := encodeLibp2pExtension(k, spki)
	require.NoError(t, err)
	return pkix.Extension{Id: oidLibp2pKey, Value: v}
}

func coSignerExt(t testing.TB, spki []byte, keys ...identity.PrivateKey) pkix.Extension {
	t.Helper()
	v, err := encodeCoSignerExtension(keys, spki)
	require.NoError(t, err)
	return pkix.Extension{Id: oidCoSigners, Value: v}
}

func requireReject(t *testing.T, err error, reason RejectReason) *RejectError {
	t.Helper()
	var re *RejectError
	require.ErrorAs(t, err, &re)
	require.Equal(t, reason, re.Reason, "error: %v", err)
	require.ErrorIs(t, err, ErrCertificateRejected)
	return re
}
