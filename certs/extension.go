package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerwire/peerwire/identity"
)

// Libp2pExtensionOID is the OID of the libp2p TLS key extension, defined by
// the libp2p TLS handshake specification (arc 1.3.6.1.4.1.53594 belongs to
// Protocol Labs). Its value is a DER SignedKey:
//
//	SignedKey ::= SEQUENCE {
//	    publicKey OCTET STRING,  -- libp2p protobuf PublicKey (here: Ed25519, 36 bytes)
//	    signature OCTET STRING   -- Sign(identity key, SignedKeyPrefix || SPKI DER of the TLS key)
//	}
//
// go-libp2p v0.51 writes it non-critical and so do we: a peer that does not
// know it may still parse the certificate.
const Libp2pExtensionOID = "1.3.6.1.4.1.53594.1.1"

// CoSignerExtensionOID is the OID of peerwire's co-signer extension. It holds
// the signatures of the additional identity keys:
//
//	CoSigners ::= SEQUENCE SIZE (1..MaxCoSigners) OF SignedKey
//
// where every SignedKey is built exactly like the libp2p extension's (same
// signed message), so each co-signer independently vouches for the TLS key.
// It is always non-critical, so go-libp2p, which rejects unknown critical
// extensions, accepts co-signed certificates and sees only the primary key.
//
// The arc 1.3.6.1.4.1.32473 is the Private Enterprise Number IANA reserves
// for documentation (RFC 5612); "7377" spells PEER on a phone keypad. peerwire
// has no registered enterprise number yet; registering one and moving this
// extension under it is a wire-format change (old peers would ignore the new
// OID and see only the primary key).
const CoSignerExtensionOID = "1.3.6.1.4.1.32473.7377.1"

// SignedKeyPrefix is the context string an identity key signs in front of the
// TLS key's SubjectPublicKeyInfo, as in libp2p: it keeps these signatures from
// being replayed in any other protocol that signs with the same key.
const SignedKeyPrefix = "libp2p-tls-handshake:"

// MaxCoSigners bounds the co-signatures one certificate may carry, so that a
// hostile peer cannot make us verify thousands of signatures per handshake.
const MaxCoSigners = 16

var (
	oidLibp2pKey = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}
	oidCoSigners = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 7377, 1}
)

// signedKey is the ASN.1 SignedKey shared by both extensions.
type signedKey struct {
	PubKey    []byte
	Signature []byte
}

// Classes of extension failures, so the parser can map them onto reject
// reasons without inspecting messages.
var (
	errExtMalformed = errors.New("malformed")
	errExtKeyType   = errors.New("not an Ed25519 identity key")
	errExtSignature = errors.New("signature does not verify")
)

// signedMessage is what an identity key signs for a TLS key.
func signedMessage(spki []byte) []byte {
	msg := make([]byte, 0, len(SignedKeyPrefix)+len(spki))
	msg = append(msg, SignedKeyPrefix...)
	return append(msg, spki...)
}

// marshalSPKI encodes a TLS public key the way go-libp2p does before signing
// or verifying it (re-encoding the parsed key rather than using the raw bytes
// from the certificate), so both implementations sign and check the same
// bytes.
func marshalSPKI(pub crypto.PublicKey) ([]byte, error) {
	return x509.MarshalPKIXPublicKey(pub)
}

func newSignedKey(k identity.PrivateKey, spki []byte) (signedKey, error) {
	pub, err := ic.MarshalPublicKey(k.Public().Libp2p())
	if err != nil {
		return signedKey{}, fmt.Errorf("encoding identity key: %w", err)
	}
	return signedKey{PubKey: pub, Signature: k.Sign(signedMessage(spki))}, nil
}

// verify checks the signature and returns the signing identity key.
func (sk signedKey) verify(spki []byte) (identity.PublicKey, error) {
	lk, err := ic.UnmarshalPublicKey(sk.PubKey)
	if err != nil {
		return identity.PublicKey{}, fmt.Errorf("%w: public key: %v", errExtMalformed, err)
	}
	pub, err := identity.PublicKeyFromLibp2p(lk)
	if err != nil {
		return identity.PublicKey{}, fmt.Errorf("%w: %v", errExtKeyType, err)
	}
	if !pub.Verify(signedMessage(spki), sk.Signature) {
		return identity.PublicKey{}, fmt.Errorf("%w: key ed25519:%s", errExtSignature, pub.Short())
	}
	return pub, nil
}

func encodeLibp2pExtension(k identity.PrivateKey, spki []byte) ([]byte, error) {
	sk, err := newSignedKey(k, spki)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(sk)
}

func encodeCoSignerExtension(keys []identity.PrivateKey, spki []byte) ([]byte, error) {
	sks := make([]signedKey, 0, len(keys))
	for _, k := range keys {
		sk, err := newSignedKey(k, spki)
		if err != nil {
			return nil, err
		}
		sks = append(sks, sk)
	}
	return asn1.Marshal(sks)
}

// decodeLibp2pExtension parses a SignedKey, refusing trailing bytes.
func decodeLibp2pExtension(der []byte) (signedKey, error) {
	var sk signedKey
	rest, err := asn1.Unmarshal(der, &sk)
	if err != nil {
		return signedKey{}, fmt.Errorf("%w: libp2p key extension: %v", errExtMalformed, err)
	}
	if len(rest) != 0 {
		return signedKey{}, fmt.Errorf("%w: libp2p key extension: %d trailing bytes", errExtMalformed, len(rest))
	}
	return sk, nil
}

// decodeCoSignerExtension parses a non-empty SEQUENCE OF SignedKey of at most
// MaxCoSigners entries, refusing trailing bytes.
func decodeCoSignerExtension(der []byte) ([]signedKey, error) {
	var sks []signedKey
	rest, err := asn1.Unmarshal(der, &sks)
	if err != nil {
		return nil, fmt.Errorf("%w: co-signer extension: %v", errExtMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: co-signer extension: %d trailing bytes", errExtMalformed, len(rest))
	}
	if len(sks) == 0 || len(sks) > MaxCoSigners {
		return nil, fmt.Errorf("%w: co-signer extension: %d signatures, want 1 to %d", errExtMalformed, len(sks), MaxCoSigners)
	}
	return sks, nil
}
