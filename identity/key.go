package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// PublicKeyPrefix starts the text form of a [PublicKey]: "ed25519:<64 hex>".
const PublicKeyPrefix = "ed25519:"

// shortLen is the number of hex digits Short prints: enough to tell the keys
// of a cluster apart in an error message, short enough to keep it on one line.
const shortLen = 8

// PrivateKey is a node's Ed25519 identity key. It signs the node's TLS
// certificates and so outlives them. The zero value holds no key.
type PrivateKey struct {
	k ed25519.PrivateKey // nil or ed25519.PrivateKeySize bytes, never aliased outside
}

// GenerateKey returns a new identity key from crypto/rand.
func GenerateKey() (PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("identity: generating Ed25519 key: %w", err)
	}
	return PrivateKey{k: k}, nil
}

// NewPrivateKey wraps an existing Ed25519 private key. It checks the length
// and that the public half stored in k matches its seed, which catches keys
// corrupted on disk before they sign anything. k is copied.
func NewPrivateKey(k ed25519.PrivateKey) (PrivateKey, error) {
	if len(k) != ed25519.PrivateKeySize {
		return PrivateKey{}, fmt.Errorf("identity: Ed25519 private key is %d bytes, want %d", len(k), ed25519.PrivateKeySize)
	}
	derived := ed25519.NewKeyFromSeed(k.Seed())
	if subtle.ConstantTimeCompare(derived, k) != 1 {
		return PrivateKey{}, errors.New("identity: Ed25519 private key is inconsistent: its public half does not match its seed")
	}
	return PrivateKey{k: derived}, nil
}

// Public returns the public half of k, the node's key identity.
func (k PrivateKey) Public() PublicKey {
	if k.IsZero() {
		return PublicKey{}
	}
	var p PublicKey
	copy(p.k[:], k.k[ed25519.SeedSize:])
	return p
}

// Ed25519 returns a copy of the key for use with crypto/ed25519 or
// crypto/x509. It returns nil for the zero PrivateKey.
func (k PrivateKey) Ed25519() ed25519.PrivateKey {
	if k.IsZero() {
		return nil
	}
	return append(ed25519.PrivateKey(nil), k.k...)
}

// Libp2p returns the key as a libp2p private key, for handing the same
// identity to a libp2p host. It returns nil for the zero PrivateKey.
func (k PrivateKey) Libp2p() ic.PrivKey {
	if k.IsZero() {
		return nil
	}
	sk, err := ic.UnmarshalEd25519PrivateKey(k.Ed25519())
	if err != nil {
		// Cannot happen: k always has the length libp2p expects.
		panic("identity: libp2p rejected a well-formed Ed25519 key: " + err.Error())
	}
	return sk
}

// Sign signs msg with the identity key. It panics on the zero PrivateKey,
// which would otherwise produce a signature nobody can verify.
func (k PrivateKey) Sign(msg []byte) []byte {
	if k.IsZero() {
		panic("identity: Sign with the zero PrivateKey")
	}
	return ed25519.Sign(k.k, msg)
}

// IsZero reports whether k holds no key.
func (k PrivateKey) IsZero() bool { return len(k.k) == 0 }

// String returns the public key's text form and never the secret, so a
// PrivateKey that ends up in a log line or %v does not leak.
func (k PrivateKey) String() string {
	if k.IsZero() {
		return "identity.PrivateKey(zero)"
	}
	return "identity.PrivateKey(" + k.Public().String() + ")"
}

// GoString is like String, so %#v does not print the key bytes either.
func (k PrivateKey) GoString() string { return k.String() }

// PublicKey is an Ed25519 public identity key. It is comparable with == and
// usable as a map key; use Equal where the comparison guards access. The zero
// value means "no key".
type PublicKey struct {
	k [ed25519.PublicKeySize]byte
}

// PublicKeyFromEd25519 converts a crypto/ed25519 public key. It rejects a
// wrong length and the all-zero key, which is reserved for "unset".
func PublicKeyFromEd25519(k ed25519.PublicKey) (PublicKey, error) {
	if len(k) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("identity: Ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
	}
	var p PublicKey
	copy(p.k[:], k)
	if p.IsZero() {
		return PublicKey{}, errors.New("identity: all-zero Ed25519 public key")
	}
	return p, nil
}

// PublicKeyFromLibp2p converts a libp2p public key. Only Ed25519 keys are
// node identities here; other key types are rejected.
func PublicKeyFromLibp2p(k ic.PubKey) (PublicKey, error) {
	if k == nil {
		return PublicKey{}, errors.New("identity: nil libp2p public key")
	}
	if k.Type() != pb.KeyType_Ed25519 {
		return PublicKey{}, fmt.Errorf("identity: libp2p key type %v is not supported, only Ed25519", k.Type())
	}
	raw, err := k.Raw()
	if err != nil {
		return PublicKey{}, fmt.Errorf("identity: reading libp2p key: %w", err)
	}
	return PublicKeyFromEd25519(raw)
}

// ParsePublicKey parses the String form "ed25519:<64 hex>" and, for
// convenience in configuration files, the bare 64 hex digits. Hex digits may
// be upper or lower case.
func ParsePublicKey(s string) (PublicKey, error) {
	const kind = "public key"
	h := strings.TrimPrefix(s, PublicKeyPrefix)
	var p PublicKey
	if err := decodeHex32(&p.k, h); err != nil {
		return PublicKey{}, parseError(kind, s, err)
	}
	if p.IsZero() {
		return PublicKey{}, parseError(kind, s, errZero)
	}
	return p, nil
}

// Ed25519 returns the key for use with crypto/ed25519 (a fresh copy).
func (k PublicKey) Ed25519() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), k.k[:]...)
}

// Libp2p returns the key as a libp2p public key. It returns nil for the zero
// PublicKey.
func (k PublicKey) Libp2p() ic.PubKey {
	if k.IsZero() {
		return nil
	}
	pk, err := ic.UnmarshalEd25519PublicKey(k.Ed25519())
	if err != nil {
		panic("identity: libp2p rejected a well-formed Ed25519 public key: " + err.Error())
	}
	return pk
}

// Verify reports whether sig is k's valid Ed25519 signature of msg.
func (k PublicKey) Verify(msg, sig []byte) bool {
	if k.IsZero() {
		return false
	}
	return ed25519.Verify(k.k[:], msg, sig)
}

// Equal reports whether k and o are the same key, in constant time.
func (k PublicKey) Equal(o PublicKey) bool {
	return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// IsZero reports whether k is the zero (unset) key.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// String returns "ed25519:" followed by 64 lowercase hex digits.
func (k PublicKey) String() string { return PublicKeyPrefix + hex.EncodeToString(k.k[:]) }

// Short returns the first 8 hex digits of the key, for error messages and
// logs where the full key would drown the message.
func (k PublicKey) Short() string { return hex.EncodeToString(k.k[:shortLen/2]) }

// PeerID returns the libp2p peer ID of the key.
func (k PublicKey) PeerID() PeerID {
	if k.IsZero() {
		return PeerID{}
	}
	return PeerID{k: k}
}

// MarshalText implements encoding.TextMarshaler with the String form; the
// zero key marshals to empty text.
func (k PublicKey) MarshalText() ([]byte, error) {
	if k.IsZero() {
		return []byte{}, nil
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, accepting what
// ParsePublicKey accepts; empty text yields the zero key.
func (k *PublicKey) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*k = PublicKey{}
		return nil
	}
	p, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// decodeHex32 decodes exactly 64 hex digits into dst.
func decodeHex32(dst *[32]byte, s string) error {
	if len(s) != 2*len(dst) {
		return errHexLength
	}
	if _, err := hex.Decode(dst[:], []byte(s)); err != nil {
		return errHexLength
	}
	return nil
}
