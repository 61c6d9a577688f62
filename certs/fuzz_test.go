package certs

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

// FuzzParsePeerCertificate feeds DER certificates to ParsePeerCertificate.
// The seeds are real encodings: our plain and co-signed certificates, one
// from go-libp2p and crafted broken ones. Whatever the input, parsing must
// not panic, and an accepted certificate must be self-consistent.
func FuzzParsePeerCertificate(f *testing.F) {
	id := newKey(f)
	f.Add(newCred(f, id).Leaf().Raw)
	f.Add(newCred(f, id, newKey(f), newKey(f)).Leaf().Raw)
	sk, _, err := ic.GenerateEd25519Key(rand.Reader)
	require.NoError(f, err)
	f.Add(libp2pCert(f, sk).Raw)
	f.Add(craft(f, func([]byte) []pkix.Extension { return nil }).Raw)
	f.Add(craft(f, func(spki []byte) []pkix.Extension {
		return []pkix.Extension{libp2pExt(f, id, spki), coSignerExt(f, []byte("other"), newKey(f))}
	}).Raw)

	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		now := cert.NotBefore.Add(time.Second)
		pc, err := ParsePeerCertificate([]*x509.Certificate{cert}, now)
		if err != nil {
			var re *RejectError
			require.ErrorAs(t, err, &re)
			require.NotZero(t, re.Reason)
			require.Equal(t, identity.HashCertificate(der), re.PeerHash)
			_ = err.Error()
			return
		}
		require.NotEmpty(t, pc.Keys)
		require.LessOrEqual(t, len(pc.Keys), MaxCoSigners+1)
		require.True(t, pc.PeerID.Equal(pc.Keys[0].PeerID()))
		require.Equal(t, identity.HashCertificate(der), pc.Hash)
		for _, k := range pc.Keys {
			require.False(t, k.IsZero())
		}
	})
}

// FuzzDecodeExtensions feeds raw extension values to both extension decoders
// and the signature check.
func FuzzDecodeExtensions(f *testing.F) {
	id := newKey(f)
	spki := []byte("spki")
	v, err := encodeLibp2pExtension(id, spki)
	require.NoError(f, err)
	f.Add(v)
	v, err = encodeCoSignerExtension([]identity.PrivateKey{id, newKey(f)}, spki)
	require.NoError(f, err)
	f.Add(v)
	f.Add([]byte{0x30, 0x00})

	f.Fuzz(func(t *testing.T, value []byte) {
		if sk, err := decodeLibp2pExtension(value); err == nil {
			if k, err := sk.verify(spki); err == nil {
				require.False(t, k.IsZero())
			}
		}
		if sks, err := decodeCoSignerExtension(value); err == nil {
			require.NotEmpty(t, sks)
			require.LessOrEqual(t, len(sks), MaxCoSigners)
			for _, sk := range sks {
				_, _ = sk.verify(spki)
			}
		}
	})
}
