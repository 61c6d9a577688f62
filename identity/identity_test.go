package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

func mustKey(t *testing.T) PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	require.NoError(t, err)
	return k
}

func TestGenerateKeyIsUsable(t *testing.T) {
	k := mustKey(t)
	require.False(t, k.IsZero())
	pub := k.Public()
	require.False(t, pub.IsZero())
	msg := []byte("hello")
	require.True(t, ed25519.Verify(k.Ed25519().Public().(ed25519.PublicKey), msg, k.Sign(msg)))
	require.True(t, pub.Verify(msg, k.Sign(msg)))
	require.False(t, pub.Verify([]byte("other"), k.Sign(msg)))
}

func TestNewPrivateKeyValidates(t *testing.T) {
	_, raw, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	k, err := NewPrivateKey(raw)
	require.NoError(t, err)
	require.Equal(t, []byte(raw), []byte(k.Ed25519()))

	_, err = NewPrivateKey(raw[:10])
	require.Error(t, err)

	corrupt := append(ed25519.PrivateKey(nil), raw...)
	corrupt[63] ^= 1 // public half no longer matches the seed
	_, err = NewPrivateKey(corrupt)
	require.Error(t, err)
}

func TestPrivateKeyIsNotAliased(t *testing.T) {
	_, raw, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k, err := NewPrivateKey(raw)
	require.NoError(t, err)
	pub := k.Public()

	raw[0] ^= 0xff
	out := k.Ed25519()
	out[1] ^= 0xff
	require.True(t, pub.Equal(k.Public()))
	require.NotEqual(t, []byte(raw), []byte(k.Ed25519()))
}

func TestPrivateKeyStringDoesNotLeak(t *testing.T) {
	k := mustKey(t)
	secret := hex.EncodeToString(k.Ed25519().Seed())
	for _, s := range []string{k.String(), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		require.NotContains(t, s, secret)
		require.Contains(t, s, k.Public().String())
	}
}

func TestZeroValues(t *testing.T) {
	var k PrivateKey
	require.True(t, k.IsZero())
	require.True(t, k.Public().IsZero())
	require.Nil(t, k.Ed25519())
	require.Nil(t, k.Libp2p())
	require.Panics(t, func() { k.Sign(nil) })

	var p PublicKey
	require.True(t, p.IsZero())
	require.True(t, p.PeerID().IsZero())
	require.Nil(t, p.Libp2p())
	require.False(t, p.Verify(nil, nil))

	var id PeerID
	require.True(t, id.IsZero())
	require.Equal(t, "", id.String())
	require.Equal(t, peer.ID(""), id.Libp2p())

	var h CertHash
	require.True(t, h.IsZero())
}

func TestPublicKeyTextRoundTrip(t *testing.T) {
	pub := mustKey(t).Public()
	s := pub.String()
	require.True(t, strings.HasPrefix(s, "ed25519:"))
	require.Len(t, s, len("ed25519:")+64)
	require.Equal(t, strings.ToLower(s), s)
	require.Equal(t, s[len("ed25519:"):][:8], pub.Short())

	for _, in := range []string{s, strings.TrimPrefix(s, "ed25519:"), "ed25519:" + strings.ToUpper(s[8:])} {
		got, err := ParsePublicKey(in)
		require.NoError(t, err, in)
		require.True(t, got.Equal(pub))
		require.Equal(t, pub, got)
	}

	text, err := pub.MarshalText()
	require.NoError(t, err)
	var back PublicKey
	require.NoError(t, back.UnmarshalText(text))
	require.Equal(t, pub, back)

	fromStd, err := PublicKeyFromEd25519(pub.Ed25519())
	require.NoError(t, err)
	require.Equal(t, pub, fromStd)
}

func TestParsePublicKeyErrors(t *testing.T) {
	valid := mustKey(t).Public().String()
	for _, in := range []string{
		"",
		"ed25519:",
		"ed25519:abc",
		valid + "00",
		valid[:len(valid)-1] + "g",
		"ed25519:" + strings.Repeat("0", 64),
		"ED25519:" + valid[8:],
		"secp256k1:" + valid[8:],
		" " + valid,
	} {
		_, err := ParsePublicKey(in)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, "input %q", in)
		require.Equal(t, "public key", pe.Kind)
	}
	_, err := PublicKeyFromEd25519(make([]byte, 31))
	require.Error(t, err)
	_, err = PublicKeyFromEd25519(make([]byte, 32))
	require.Error(t, err, "all-zero key is reserved")
}

func TestParseErrorTruncatesInput(t *testing.T) {
	_, err := ParsePublicKey(strings.Repeat("x", 10000))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	require.Less(t, len(err.Error()), 200)
}

func TestPeerIDMatchesLibp2p(t *testing.T) {
	k := mustKey(t)
	sk, pk, err := ic.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	_ = sk

	// Our key -> libp2p's derivation.
	want, err := peer.IDFromPrivateKey(k.Libp2p())
	require.NoError(t, err)
	require.Equal(t, want, k.Public().PeerID().Libp2p())
	require.Equal(t, want.String(), k.Public().PeerID().String())
	require.True(t, strings.HasPrefix(want.String(), "12D3KooW"))

	// libp2p's key -> ours.
	pub, err := PublicKeyFromLibp2p(pk)
	require.NoError(t, err)
	lid, err := peer.IDFromPublicKey(pk)
	require.NoError(t, err)
	require.Equal(t, lid, pub.PeerID().Libp2p())
	conv, err := PeerIDFromLibp2p(lid)
	require.NoError(t, err)
	require.True(t, conv.PublicKey().Equal(pub))
}

func TestPeerIDTextRoundTrip(t *testing.T) {
	pub := mustKey(t).Public()
	id := pub.PeerID()
	got, err := ParsePeerID(id.String())
	require.NoError(t, err)
	require.True(t, got.Equal(id))
	require.Equal(t, id, got)
	require.True(t, got.PublicKey().Equal(pub))

	// libp2p's CID form names the same peer.
	cidForm := peer.ToCid(id.Libp2p()).String()
	got, err = ParsePeerID(cidForm)
	require.NoError(t, err)
	require.Equal(t, id, got)

	text, err := id.MarshalText()
	require.NoError(t, err)
	var back PeerID
	require.NoError(t, back.UnmarshalText(text))
	require.Equal(t, id, back)
}

func TestParsePeerIDErrors(t *testing.T) {
	// An RSA-style SHA-256 peer ID does not embed its key.
	_, rsaPub, err := ic.GenerateKeyPair(ic.RSA, 2048)
	require.NoError(t, err)
	rsaID, err := peer.IDFromPublicKey(rsaPub)
	require.NoError(t, err)

	// A secp256k1 key is embedded but is not an Ed25519 identity.
	_, secpPub, err := ic.GenerateSecp256k1Key(rand.Reader)
	require.NoError(t, err)
	secpID, err := peer.IDFromPublicKey(secpPub)
	require.NoError(t, err)

	for _, in := range []string{
		"",
		"12D3KooW",
		"not a peer id",
		rsaID.String(),
		secpID.String(),
		mustKey(t).Public().String(),
	} {
		_, err := ParsePeerID(in)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, "input %q", in)
		require.Equal(t, "peer ID", pe.Kind)
	}
	_, err = ParsePeerID(rsaID.String())
	require.ErrorIs(t, err, errNotIdentityHash)
}

func TestCertHash(t *testing.T) {
	der := []byte("not really a certificate")
	h := HashCertificate(der)
	require.False(t, h.IsZero())
	require.Len(t, h.String(), 64)
	require.Equal(t, strings.ToLower(h.String()), h.String())
	require.Equal(t, h.String()[:8], h.Short())
	require.Len(t, h.Bytes(), 32)
	require.True(t, h.Equal(HashCertificate(der)))
	require.False(t, h.Equal(HashCertificate([]byte("other"))))

	for _, in := range []string{h.String(), strings.ToUpper(h.String())} {
		got, err := ParseCertHash(in)
		require.NoError(t, err)
		require.Equal(t, h, got)
	}

	text, err := h.MarshalText()
	require.NoError(t, err)
	var back CertHash
	require.NoError(t, back.UnmarshalText(text))
	require.Equal(t, h, back)
}

func TestParseCertHashErrors(t *testing.T) {
	h := HashCertificate([]byte("x")).String()
	for _, in := range []string{
		"", "abc", h + "0", h[:63], h[:63] + "z", strings.Repeat("0", 64), "sha256:" + h, "0x" + h[2:],
	} {
		_, err := ParseCertHash(in)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, "input %q", in)
		require.Equal(t, "certificate hash", pe.Kind)
	}
}

func TestEqualSemantics(t *testing.T) {
	a, b := mustKey(t).Public(), mustKey(t).Public()
	require.True(t, a.Equal(a))
	require.False(t, a.Equal(b))
	require.False(t, a.Equal(PublicKey{}))
	require.True(t, PublicKey{}.Equal(PublicKey{}))

	// Keys that differ only in the last byte are different.
	c := a
	c.k[31] ^= 1
	require.False(t, a.Equal(c))

	require.True(t, a.PeerID().Equal(a.PeerID()))
	require.False(t, a.PeerID().Equal(b.PeerID()))

	h1 := HashCertificate([]byte{1})
	h2 := h1
	h2.h[31] ^= 1
	require.True(t, h1.Equal(h1))
	require.False(t, h1.Equal(h2))
}

func TestJSON(t *testing.T) {
	pub := mustKey(t).Public()
	type doc struct {
		Key   PublicKey          `json:"key"`
		Peer  PeerID             `json:"peer"`
		Hash  CertHash           `json:"hash"`
		Empty PublicKey          `json:"empty"`
		ByKey map[PublicKey]bool `json:"by_key"`
	}
	in := doc{Key: pub, Peer: pub.PeerID(), Hash: HashCertificate([]byte("c")), ByKey: map[PublicKey]bool{pub: true}}
	data, err := json.Marshal(in)
	require.NoError(t, err)
	require.Contains(t, string(data), `"key":"`+pub.String()+`"`)
	require.Contains(t, string(data), `"peer":"`+pub.PeerID().String()+`"`)
	require.Contains(t, string(data), `"empty":""`)

	var out doc
	require.NoError(t, json.Unmarshal(data, &out))
	require.Equal(t, in, out)

	var bad doc
	err = json.Unmarshal([]byte(`{"key":"ed25519:zz"}`), &bad)
	var pe *ParseError
	require.True(t, errors.As(err, &pe))
}
