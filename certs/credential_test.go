package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

func TestOIDConstantsMatch(t *testing.T) {
	require.Equal(t, Libp2pExtensionOID, oidLibp2pKey.String())
	require.Equal(t, CoSignerExtensionOID, oidCoSigners.String())
}

func TestNewCredentialLayout(t *testing.T) {
	id := newKey(t)
	before := time.Now()
	c := newCred(t, id)
	leaf := c.Leaf()

	require.Len(t, c.TLSCertificate().Certificate, 1)
	require.Same(t, leaf, c.TLSCertificate().Leaf)
	require.Equal(t, identity.HashCertificate(leaf.Raw), c.Hash())
	require.True(t, c.IdentityKey().Public().Equal(id.Public()))
	require.True(t, c.PeerID().Equal(id.Public().PeerID()))
	require.Equal(t, []identity.PublicKey{id.Public()}, c.IdentityKeys())

	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "TLS key is %T", leaf.PublicKey)
	require.Equal(t, elliptic.P256(), pub.Curve)

	require.WithinDuration(t, before.Add(-time.Hour), leaf.NotBefore, 5*time.Second)
	require.WithinDuration(t, before.Add(DefaultValidity), leaf.NotAfter, 5*time.Second)
	require.Equal(t, id.Public().PeerID().String(), leaf.Subject.CommonName)

	var found int
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(oidLibp2pKey) {
			found++
			require.False(t, ext.Critical, "go-libp2p v0.51 writes the key extension non-critical")
		}
		require.False(t, ext.Id.Equal(oidCoSigners), "no co-signer extension without co-signers")
	}
	require.Equal(t, 1, found)
	require.Empty(t, leaf.UnhandledCriticalExtensions)
}

func TestNewCredentialCoSigners(t *testing.T) {
	id, a, b := newKey(t), newKey(t), newKey(t)
	c := newCred(t, id, a, b)
	require.Equal(t, []identity.PublicKey{id.Public(), a.Public(), b.Public()}, c.IdentityKeys())

	var ext []byte
	for _, e := range c.Leaf().Extensions {
		if e.Id.Equal(oidCoSigners) {
			require.False(t, e.Critical)
			ext = e.Value
		}
	}
	require.NotNil(t, ext)
	var sks []signedKey
	rest, err := asn1.Unmarshal(ext, &sks)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Len(t, sks, 2)

	// IdentityKeys returns a copy.
	keys := c.IdentityKeys()
	keys[0] = identity.PublicKey{}
	require.True(t, c.IdentityKeys()[0].Equal(id.Public()))
}

func TestNewCredentialValidity(t *testing.T) {
	c, err := NewCredential(newKey(t), Options{Validity: 48 * time.Hour})
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(48*time.Hour), c.Leaf().NotAfter, 5*time.Second)
}

func TestNewCredentialErrors(t *testing.T) {
	id := newKey(t)
	for name, opts := range map[string]Options{
		"negative validity": {Validity: -time.Second},
		"zero co-signer":    {CoSigners: []identity.PrivateKey{{}}},
		"primary as cosign": {CoSigners: []identity.PrivateKey{id}},
		"duplicate co-signer": func() Options {
			k := newKey(t)
			return Options{CoSigners: []identity.PrivateKey{k, k}}
		}(),
		"too many co-signers": func() Options {
			var o Options
			for range MaxCoSigners + 1 {
				o.CoSigners = append(o.CoSigners, newKey(t))
			}
			return o
		}(),
	} {
		_, err := NewCredential(id, opts)
		require.Error(t, err, name)
	}
	_, err := NewCredential(identity.PrivateKey{}, Options{})
	require.Error(t, err)
}

func TestNewCredentialMaxCoSigners(t *testing.T) {
	var o Options
	for range MaxCoSigners {
		o.CoSigners = append(o.CoSigners, newKey(t))
	}
	c, err := NewCredential(newKey(t), o)
	require.NoError(t, err)
	pc, err := ParsePeerCertificate(chainOf(c), time.Now())
	require.NoError(t, err)
	require.Len(t, pc.Keys, MaxCoSigners+1)
}

func TestCredentialsAreUnique(t *testing.T) {
	id := newKey(t)
	a, b := newCred(t, id), newCred(t, id)
	require.False(t, a.Hash().Equal(b.Hash()), "each credential has its own TLS key and certificate")
	require.True(t, a.PeerID().Equal(b.PeerID()), "but the same key identity")
}
