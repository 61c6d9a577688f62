package certs

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

// A certificate verified once is remembered; a second verification gives the same result.
func TestVerifiedCertificateIsRemembered(t *testing.T) {
	c := newCred(t, newKey(t), newKey(t))
	p := &TrustPolicy{Hashes: []identity.CertHash{c.Hash()}}
	first, err := p.Verify(chainOf(c))
	require.NoError(t, err)
	require.NotNil(t, verified.get(c.Hash(), c.Leaf().Raw))

	second, err := p.Verify(chainOf(c))
	require.NoError(t, err)
	require.Equal(t, first.Hash, second.Hash)
	require.Equal(t, first.Keys, second.Keys)
	require.True(t, first.PeerID.Equal(second.PeerID))
	require.Same(t, c.Leaf(), second.Leaf)

	// Callers get their own copy of the keys.
	second.Keys[0] = identity.PublicKey{}
	third, err := p.Verify(chainOf(c))
	require.NoError(t, err)
	require.Equal(t, c.IdentityKeys(), third.Keys)
}

// The trust policy is applied on every verification, cached or not.
func TestRememberedCertificateStillNeedsTrust(t *testing.T) {
	c := newCred(t, newKey(t))
	_, err := (&TrustPolicy{AnyAuthenticated: true}).Verify(chainOf(c))
	require.NoError(t, err)

	_, err = (&TrustPolicy{Hashes: []identity.CertHash{hashOf(t, "someone else")}}).Verify(chainOf(c))
	requireReject(t, err, ReasonHashNotTrusted)
	_, err = (&TrustPolicy{Keys: []identity.PublicKey{newKey(t).Public()}}).Verify(chainOf(c))
	requireReject(t, err, ReasonKeysNotTrusted)
}

// The validity period is checked on every verification, cached or not.
func TestRememberedCertificateExpires(t *testing.T) {
	id := newKey(t)
	now := time.Now()
	c, err := newCredential(id, Options{Validity: time.Hour}, now)
	require.NoError(t, err)
	p := &TrustPolicy{Keys: []identity.PublicKey{id.Public()}}
	_, rerr := p.verifyAt(chainOf(c), now)
	require.Nil(t, rerr)
	require.NotNil(t, verified.get(c.Hash(), c.Leaf().Raw))

	_, rerr = p.verifyAt(chainOf(c), now.Add(2*time.Hour))
	require.NotNil(t, rerr)
	require.Equal(t, ReasonExpired, rerr.Reason)
	require.Equal(t, []identity.PublicKey{id.Public()}, rerr.PresentedKeys)
}

// Failed verifications are not remembered: the same bad certificate fails in full again.
func TestFailedVerificationIsNotRemembered(t *testing.T) {
	c := newCred(t, newKey(t))
	der := append([]byte(nil), c.Leaf().Raw...)
	der[len(der)-5] ^= 0xff // inside the signature value
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	for range 2 {
		_, err = ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
		requireReject(t, err, ReasonBadSignature)
	}
	require.Nil(t, verified.get(identity.HashCertificate(der), der))
}

// A hit needs the full DER to match, not only the hash.
func TestVerifiedCacheComparesDER(t *testing.T) {
	vc := newVerifiedCache(4)
	c := newCred(t, newKey(t))
	vc.add(c.Hash(), c.Leaf().Raw, c.IdentityKeys(), c.PeerID())
	require.NotNil(t, vc.get(c.Hash(), c.Leaf().Raw))
	other := append([]byte(nil), c.Leaf().Raw...)
	other[0] ^= 1
	require.Nil(t, vc.get(c.Hash(), other))
}

// The cache is bounded and forgets the least recently used certificate first.
func TestVerifiedCacheIsBounded(t *testing.T) {
	vc := newVerifiedCache(3)
	var creds []*Credential
	for range 4 {
		creds = append(creds, newCred(t, newKey(t)))
	}
	add := func(c *Credential) { vc.add(c.Hash(), c.Leaf().Raw, c.IdentityKeys(), c.PeerID()) }
	add(creds[0])
	add(creds[1])
	add(creds[2])
	require.NotNil(t, vc.get(creds[0].Hash(), creds[0].Leaf().Raw)) // 0 is now the most recent
	add(creds[3])
	require.Equal(t, 3, vc.len())
	require.Nil(t, vc.get(creds[1].Hash(), creds[1].Leaf().Raw), "the least recently used is gone")
	for _, i := range []int{0, 2, 3} {
		require.NotNil(t, vc.get(creds[i].Hash(), creds[i].Leaf().Raw))
	}
}

// A certificate without its DER is never taken from or put into the cache.
func TestCertificateWithoutDERIsNotCached(t *testing.T) {
	c := newCred(t, newKey(t))
	leaf := *c.Leaf()
	leaf.Raw = nil
	_, err := ParsePeerCertificate([]*x509.Certificate{&leaf}, time.Now())
	require.NoError(t, err)
	require.Nil(t, verified.get(identity.HashCertificate(nil), nil))
}

func BenchmarkVerify(b *testing.B) {
	c := newCred(b, newKey(b))
	p := &TrustPolicy{Hashes: []identity.CertHash{c.Hash()}}
	b.Run("first", func(b *testing.B) {
		leaf := *c.Leaf()
		leaf.Raw = nil // never cached: the full checks every time
		chain := []*x509.Certificate{&leaf}
		for b.Loop() {
			if _, err := ParsePeerCertificate(chain, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Verify(chainOf(c)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
