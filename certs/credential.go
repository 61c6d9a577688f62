package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/peerwire/peerwire/identity"
)

// DefaultValidity is how long a certificate from NewCredential is valid when
// Options.Validity is zero. A year bounds the life of a leaked TLS key while
// leaving operators ample time to rotate; peers that trust the identity key
// rather than the certificate hash need no change on rotation.
const DefaultValidity = 365 * 24 * time.Hour

// clockSkew is how far NotBefore is backdated, so that a peer whose clock is
// a little behind ours still accepts a certificate made a moment ago.
const clockSkew = time.Hour

// Options tunes NewCredential. The zero value is the default.
type Options struct {
	// CoSigners are additional Ed25519 keys that also sign the TLS key
	// (beyond the primary identity key), at most MaxCoSigners, each distinct
	// from the others and from the primary key. A peer trusting any of them
	// accepts the certificate. Their private keys are needed only to issue
	// the certificate: Save does not store them.
	CoSigners []identity.PrivateKey
	// Validity is how long the certificate is valid from its creation. If
	// zero, DefaultValidity (one year). NotBefore is always backdated one
	// hour to tolerate clock skew.
	Validity time.Duration
}

// Credential is a node's TLS identity: its identity key, a TLS private key
// and the self-signed certificate binding the two. A Credential is immutable
// and safe for concurrent use.
type Credential struct {
	id     identity.PrivateKey
	tlsKey crypto.Signer
	cert   tls.Certificate // Leaf set
	hash   identity.CertHash
	keys   []identity.PublicKey // primary first, then co-signers
}

// NewCredential issues a new certificate for the identity key id: a fresh
// ECDSA P-256 TLS key and a self-signed X.509 certificate carrying the libp2p
// key extension signed by id and, if opts.CoSigners is set, peerwire's
// co-signer extension (see CoSignerExtensionOID).
func NewCredential(id identity.PrivateKey, opts Options) (*Credential, error) {
	return newCredential(id, opts, time.Now())
}

func newCredential(id identity.PrivateKey, opts Options, now time.Time) (*Credential, error) {
	if id.IsZero() {
		return nil, errors.New("certs: zero identity key")
	}
	if len(opts.CoSigners) > MaxCoSigners {
		return nil, fmt.Errorf("certs: %d co-signers, at most %d allowed", len(opts.CoSigners), MaxCoSigners)
	}
	seen := []identity.PublicKey{id.Public()}
	for i, k := range opts.CoSigners {
		if k.IsZero() {
			return nil, fmt.Errorf("certs: co-signer %d is the zero key", i)
		}
		if slices.ContainsFunc(seen, k.Public().Equal) {
			return nil, fmt.Errorf("certs: co-signer %d (ed25519:%s) duplicates another signing key", i, k.Public().Short())
		}
		seen = append(seen, k.Public())
	}
	validity := opts.Validity
	switch {
	case validity == 0:
		validity = DefaultValidity
	case validity < 0:
		return nil, fmt.Errorf("certs: negative validity %v", validity)
	}

	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating TLS key: %w", err)
	}
	spki, err := marshalSPKI(tlsKey.Public())
	if err != nil {
		return nil, fmt.Errorf("certs: encoding TLS key: %w", err)
	}
	libp2pExt, err := encodeLibp2pExtension(id, spki)
	if err != nil {
		return nil, fmt.Errorf("certs: libp2p key extension: %w", err)
	}
	exts := []pkix.Extension{{Id: oidLibp2pKey, Critical: false, Value: libp2pExt}}
	if len(opts.CoSigners) > 0 {
		v, err := encodeCoSignerExtension(opts.CoSigners, spki)
		if err != nil {
			return nil, fmt.Errorf("certs: co-signer extension: %w", err)
		}
		exts = append(exts, pkix.Extension{Id: oidCoSigners, Critical: false, Value: v})
	}

	// A random 127-bit serial: positive and within RFC 5280's 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The subject is informational (it names the peer for humans
		// reading the certificate); nothing trusts it.
		Subject:     pkix.Name{CommonName: id.Public().PeerID().String()},
		NotBefore:   now.Add(-clockSkew),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},

		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, tlsKey.Public(), tlsKey)
	if err != nil {
		return nil, fmt.Errorf("certs: creating certificate: %w", err)
	}
	return assemble(id, tlsKey, der)
}

// assemble checks that der is a certificate for tlsKey carrying a valid
// signature by id, and builds the Credential. The validity period is not
// checked, so that an expired credential can still be loaded and renewed.
func assemble(id identity.PrivateKey, tlsKey crypto.Signer, der []byte) (*Credential, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(tlsKey.Public()) {
		return nil, errors.New("certs: the TLS private key does not match the certificate")
	}
	pc, rerr := parsePeerCertificate([]*x509.Certificate{leaf}, time.Time{}, false)
	if rerr != nil {
		return nil, fmt.Errorf("certs: invalid certificate: %w", rerr)
	}
	if !pc.Keys[0].Equal(id.Public()) {
		return nil, fmt.Errorf("certs: the certificate is signed by identity key ed25519:%s, not by ed25519:%s",
			pc.Keys[0].Short(), id.Public().Short())
	}
	return &Credential{
		id:     id,
		tlsKey: tlsKey,
		cert:   tls.Certificate{Certificate: [][]byte{der}, PrivateKey: tlsKey, Leaf: leaf},
		hash:   pc.Hash,
		keys:   pc.Keys,
	}, nil
}

// TLSCertificate returns the certificate and TLS key for a tls.Config, with
// Leaf set. The returned value shares its contents with c; do not modify them.
func (c *Credential) TLSCertificate() tls.Certificate { return c.cert }

// Leaf returns the parsed certificate. Treat it as read-only.
func (c *Credential) Leaf() *x509.Certificate { return c.cert.Leaf }

// Hash returns the certificate identity, SHA-256 of the certificate's DER:
// what peers see as this node's remote identity and may list in their trust
// policy.
func (c *Credential) Hash() identity.CertHash { return c.hash }

// IdentityKey returns the primary identity key that signed the certificate.
func (c *Credential) IdentityKey() identity.PrivateKey { return c.id }

// PeerID returns the libp2p peer ID of the primary identity key.
func (c *Credential) PeerID() identity.PeerID { return c.id.Public().PeerID() }

// IdentityKeys returns every identity key that signed the certificate, the
// primary first, then the co-signers. The slice is a copy.
func (c *Credential) IdentityKeys() []identity.PublicKey { return slices.Clone(c.keys) }
