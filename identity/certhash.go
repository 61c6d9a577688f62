package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// CertHash identifies one certificate: the SHA-256 of the leaf certificate's
// DER encoding. Unlike a [PeerID] it changes whenever the certificate is
// re-issued, so trusting a hash trusts exactly one certificate. It is what a
// connection reports as the remote identity.
//
// The zero value means "no certificate".
type CertHash struct {
	h [sha256.Size]byte
}

// HashCertificate returns the hash of a DER-encoded certificate.
func HashCertificate(der []byte) CertHash {
	return CertHash{h: sha256.Sum256(der)}
}

// ParseCertHash parses 64 hex digits (either case) as printed by String.
func ParseCertHash(s string) (CertHash, error) {
	const kind = "certificate hash"
	var h CertHash
	if err := decodeHex32(&h.h, s); err != nil {
		return CertHash{}, parseError(kind, s, err)
	}
	if h.IsZero() {
		return CertHash{}, parseError(kind, s, errZero)
	}
	return h, nil
}

// String returns the hash as 64 lowercase hex digits.
func (h CertHash) String() string { return hex.EncodeToString(h.h[:]) }

// Short returns the first 8 hex digits, for error messages and logs.
func (h CertHash) Short() string { return hex.EncodeToString(h.h[:shortLen/2]) }

// Equal reports whether h and o are the same hash, in constant time.
func (h CertHash) Equal(o CertHash) bool {
	return subtle.ConstantTimeCompare(h.h[:], o.h[:]) == 1
}

// IsZero reports whether h is the zero (unset) hash.
func (h CertHash) IsZero() bool { return h == CertHash{} }

// Bytes returns a copy of the 32 hash bytes, for encodings other than hex
// (for example a multiaddr /certhash component).
func (h CertHash) Bytes() []byte { return append([]byte(nil), h.h[:]...) }

// MarshalText implements encoding.TextMarshaler with the String form; the
// zero hash marshals to empty text.
func (h CertHash) MarshalText() ([]byte, error) {
	if h.IsZero() {
		return []byte{}, nil
	}
	return []byte(h.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, accepting what
// ParseCertHash accepts; empty text yields the zero hash.
func (h *CertHash) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*h = CertHash{}
		return nil
	}
	p, err := ParseCertHash(string(text))
	if err != nil {
		return err
	}
	*h = p
	return nil
}
