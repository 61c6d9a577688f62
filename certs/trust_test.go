package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

func TestTrustByHash(t *testing.T) {
	c := newCred(t, newKey(t))
	p := &TrustPolicy{Hashes: []identity.CertHash{hashOf(t, "x"), c.Hash()}}
	pc, err := p.Verify(chainOf(c))
	require.NoError(t, err)
	require.Equal(t, c.Hash(), pc.Hash)
	require.Equal(t, c.IdentityKeys(), pc.Keys)
	require.True(t, pc.PeerID.Equal(c.PeerID()))
	require.Same(t, c.Leaf(), pc.Leaf)
}

func TestTrustByKey(t *testing.T) {
	id := newKey(t)
	c := newCred(t, id)
	p := &TrustPolicy{Keys: []identity.PublicKey{id.Public()}}
	_, err := p.Verify(chainOf(c))
	require.NoError(t, err)

	// Trust in a key survives rotation to a new certificate.
	_, err = p.Verify(chainOf(newCred(t, id)))
	require.NoError(t, err)
}

func TestTrustByCoSignerKey(t *testing.T) {
	cosigner := newKey(t)
	c := newCred(t, newKey(t), newKey(t), cosigner)
	p := &TrustPolicy{Keys: []identity.PublicKey{cosigner.Public()}}
	pc, err := p.Verify(chainOf(c))
	require.NoError(t, err)
	require.Len(t, pc.Keys, 3)
	require.True(t, pc.PeerID.Equal(c.PeerID()), "the peer ID is the primary key's")
}

func TestTrustByNeither(t *testing.T) {
	c := newCred(t, newKey(t), newKey(t))
	trustedKey := newKey(t).Public()
	trustedHash := hashOf(t, "other certificate")
	p := &TrustPolicy{Keys: []identity.PublicKey{trustedKey}, Hashes: []identity.CertHash{trustedHash}}

	_, err := p.Verify(chainOf(c))
	re := requireReject(t, err, ReasonKeysNotTrusted)
	require.Equal(t, c.Hash(), re.PeerHash)
	require.Equal(t, c.IdentityKeys(), re.PresentedKeys)
	require.Equal(t, []identity.PublicKey{trustedKey}, re.TrustedKeys)
	require.Equal(t, []identity.CertHash{trustedHash}, re.TrustedHashes)
	require.Nil(t, re.PeerAddr)

	// With only hashes configured, the reason is the hash.
	_, err = (&TrustPolicy{Hashes: []identity.CertHash{trustedHash}}).Verify(chainOf(c))
	re = requireReject(t, err, ReasonHashNotTrusted)
	require.Equal(t, c.IdentityKeys(), re.PresentedKeys)
}

func TestTrustEmptyPolicyRejects(t *testing.T) {
	c := newCred(t, newKey(t))
	for _, p := range []*TrustPolicy{{}, nil} {
		_, err := p.Verify(chainOf(c))
		requireReject(t, err, ReasonKeysNotTrusted)
		require.ErrorIs(t, err, ErrNoTrustedPeers)
	}
}

func TestTrustAnyAuthenticated(t *testing.T) {
	p := &TrustPolicy{AnyAuthenticated: true}
	_, err := p.Verify(chainOf(newCred(t, newKey(t))))
	require.NoError(t, err)

	// Still only well-formed certificates.
	_, err = p.Verify([]*x509.Certificate{craft(t, func([]byte) []pkix.Extension { return nil })})
	requireReject(t, err, ReasonNoIdentityKey)
}

func TestRejectExpiredAndNotYetValid(t *testing.T) {
	id := newKey(t)
	now := time.Now()
	old, err := newCredential(id, Options{Validity: time.Hour}, now.Add(-3*time.Hour))
	require.NoError(t, err)
	future, err := newCredential(id, Options{Validity: time.Hour}, now.Add(3*time.Hour))
	require.NoError(t, err)
	p := &TrustPolicy{Keys: []identity.PublicKey{id.Public()}}

	for name, c := range map[string]*Credential{"expired": old, "not yet valid": future} {
		_, err := p.Verify(chainOf(c))
		re := requireReject(t, err, ReasonExpired)
		require.Equal(t, c.Hash(), re.PeerHash, name)
		require.Equal(t, []identity.PublicKey{id.Public()}, re.PresentedKeys, name)
	}

	// The one-hour backdating tolerates a peer clock slightly behind.
	fresh := newCred(t, id)
	_, err = ParsePeerCertificate(chainOf(fresh), now.Add(-50*time.Minute))
	require.NoError(t, err)
}

func TestRejectNoCertificate(t *testing.T) {
	_, err := ParsePeerCertificate(nil, time.Now())
	re := requireReject(t, err, ReasonNoCertificate)
	require.True(t, re.PeerHash.IsZero())
}

func TestRejectTwoCertificates(t *testing.T) {
	a, b := newCred(t, newKey(t)), newCred(t, newKey(t))
	_, err := (&TrustPolicy{AnyAuthenticated: true}).Verify([]*x509.Certificate{a.Leaf(), b.Leaf()})
	re := requireReject(t, err, ReasonTooManyCertificates)
	require.Equal(t, a.Hash(), re.PeerHash)
}

func TestRejectWithoutExtension(t *testing.T) {
	cert := craft(t, func([]byte) []pkix.Extension { return nil })
	_, err := ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	re := requireReject(t, err, ReasonNoIdentityKey)
	require.Equal(t, identity.HashCertificate(cert.Raw), re.PeerHash)
}

func TestRejectTamperedExtensionSignature(t *testing.T) {
	id := newKey(t)
	// The identity key signed some other TLS key, not this certificate's.
	cert := craft(t, func([]byte) []pkix.Extension {
		return []pkix.Extension{libp2pExt(t, id, []byte("another key's SPKI"))}
	})
	_, err := ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	requireReject(t, err, ReasonBadSignature)

	// A signature with one bit flipped.
	cert = craft(t, func(spki []byte) []pkix.Extension {
		ext := libp2pExt(t, id, spki)
		var sk signedKey
		_, err := asn1.Unmarshal(ext.Value, &sk)
		require.NoError(t, err)
		sk.Signature[0] ^= 1
		ext.Value, err = asn1.Marshal(sk)
		require.NoError(t, err)
		return []pkix.Extension{ext}
	})
	_, err = ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	requireReject(t, err, ReasonBadSignature)
}

func TestRejectTamperedCoSignerSignature(t *testing.T) {
	id, cosigner := newKey(t), newKey(t)
	cert := craft(t, func(spki []byte) []pkix.Extension {
		return []pkix.Extension{libp2pExt(t, id, spki), coSignerExt(t, []byte("elsewhere"), cosigner)}
	})
	_, err := ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	requireReject(t, err, ReasonBadSignature)
}

func TestRejectMalformedExtensions(t *testing.T) {
	id, cosigner := newKey(t), newKey(t)
	cases := map[string]func(spki []byte) []pkix.Extension{
		"garbage libp2p extension": func([]byte) []pkix.Extension {
			return []pkix.Extension{{Id: oidLibp2pKey, Value: []byte{0x30, 0x03, 0x01}}}
		},
		"trailing bytes": func(spki []byte) []pkix.Extension {
			ext := libp2pExt(t, id, spki)
			ext.Value = append(ext.Value, 0)
			return []pkix.Extension{ext}
		},
		"empty co-signer list": func(spki []byte) []pkix.Extension {
			empty, err := asn1.Marshal([]signedKey{})
			require.NoError(t, err)
			return []pkix.Extension{libp2pExt(t, id, spki), {Id: oidCoSigners, Value: empty}}
		},
		"duplicate co-signer": func(spki []byte) []pkix.Extension {
			return []pkix.Extension{libp2pExt(t, id, spki), coSignerExt(t, spki, cosigner, cosigner)}
		},
		"primary repeated as co-signer": func(spki []byte) []pkix.Extension {
			return []pkix.Extension{libp2pExt(t, id, spki), coSignerExt(t, spki, id)}
		},
		"unknown critical extension": func(spki []byte) []pkix.Extension {
			return []pkix.Extension{libp2pExt(t, id, spki), {Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePeerCertificate([]*x509.Certificate{craft(t, mk)}, time.Now())
			requireReject(t, err, ReasonMalformed)
		})
	}
}

func TestAcceptCriticalKnownExtensions(t *testing.T) {
	id, cosigner := newKey(t), newKey(t)
	cert := craft(t, func(spki []byte) []pkix.Extension {
		a, b := libp2pExt(t, id, spki), coSignerExt(t, spki, cosigner)
		a.Critical, b.Critical = true, true
		return []pkix.Extension{a, b}
	})
	pc, err := ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	require.NoError(t, err)
	require.Equal(t, []identity.PublicKey{id.Public(), cosigner.Public()}, pc.Keys)
	require.Len(t, cert.UnhandledCriticalExtensions, 2, "the input is not modified")
}

func TestRejectBadSelfSignature(t *testing.T) {
	c := newCred(t, newKey(t))
	der := append([]byte(nil), c.Leaf().Raw...)
	der[len(der)-5] ^= 0xff // inside the signature value
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	_, err = ParsePeerCertificate([]*x509.Certificate{cert}, time.Now())
	requireReject(t, err, ReasonBadSignature)
}

func TestTrustPolicyAdd(t *testing.T) {
	k1, k2 := newKey(t).Public(), newKey(t).Public()
	h := hashOf(t, "cert")
	var p TrustPolicy
	require.NoError(t, p.Add(h.String()))
	require.NoError(t, p.Add(k1.String()))
	require.NoError(t, p.Add(k2.PeerID().String()))
	// Duplicates are ignored, whichever form names them.
	require.NoError(t, p.Add(k1.PeerID().String()))
	require.NoError(t, p.Add(h.String()))
	require.Equal(t, []identity.CertHash{h}, p.Hashes)
	require.Equal(t, []identity.PublicKey{k1, k2}, p.Keys)
	require.NoError(t, p.Validate())

	for _, bad := range []string{"", "nonsense", "ed25519:12", h.String()[:63] + "x", "12D3KooWnotreally"} {
		err := p.Add(bad)
		var pe *identity.ParseError
		require.ErrorAs(t, err, &pe, "input %q", bad)
	}
}

func TestTrustPolicyValidate(t *testing.T) {
	require.ErrorIs(t, (&TrustPolicy{}).Validate(), ErrNoTrustedPeers)
	require.ErrorIs(t, (*TrustPolicy)(nil).Validate(), ErrNoTrustedPeers)
	require.Equal(t, "certs: no trusted peers configured; set AnyAuthenticated to accept any", ErrNoTrustedPeers.Error())
	require.NoError(t, (&TrustPolicy{AnyAuthenticated: true}).Validate())
	require.Error(t, (&TrustPolicy{Keys: []identity.PublicKey{{}}}).Validate())
	require.Error(t, (&TrustPolicy{Hashes: []identity.CertHash{{}}}).Validate())
}

func TestParseDoesNotConfuseRejectKinds(t *testing.T) {
	_, err := ParsePeerCertificate(nil, time.Now())
	var rp *RejectedByPeerError
	require.False(t, errors.As(err, &rp))
}

func hashOf(t testing.TB, s string) identity.CertHash {
	t.Helper()
	return identity.HashCertificate([]byte(s))
}
