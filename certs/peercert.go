package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/peerwire/peerwire/identity"
)

// PeerCertificate is a peer's certificate that passed every structural and
// cryptographic check: what the peer proved about itself, before any trust
// decision.
type PeerCertificate struct {
	// Leaf is the certificate itself. Treat it as read-only.
	Leaf *x509.Certificate
	// Hash is the certificate identity: SHA-256 of Leaf.Raw.
	Hash identity.CertHash
	// Keys are all identity keys that signed the certificate's TLS key: the
	// libp2p extension's key first, then the co-signers in certificate order.
	// A certificate with any invalid signature is rejected, so every key here
	// verified.
	Keys []identity.PublicKey
	// PeerID is the key identity of Keys[0], the one libp2p peers see.
	PeerID identity.PeerID
}

// ParsePeerCertificate checks a peer's certificate chain as received in a
// TLS handshake, at time now:
//
//   - exactly one certificate (peers are self-signed, there is no chain);
//   - no critical extension other than peerwire's and libp2p's;
//   - a valid self-signature;
//   - the libp2p key extension, holding an Ed25519 key whose signature of
//     the certificate's key verifies;
//   - if present, the co-signer extension, every signature of which verifies;
//   - now within [NotBefore, NotAfter].
//
// Failures are [*RejectError] values with the matching Reason. The chain is
// not modified.
//
// The signature checks depend on the certificate's bytes alone, so the outcome
// of a successful check is remembered (a bounded set of recent certificates,
// matched by their full DER): a peer that reconnects with the same certificate
// costs no signature verification. The other checks run every time.
func ParsePeerCertificate(chain []*x509.Certificate, now time.Time) (*PeerCertificate, error) {
	pc, rerr := parsePeerCertificate(chain, now, true)
	if rerr != nil {
		return nil, rerr
	}
	return pc, nil
}

// parsePeerCertificate is ParsePeerCertificate with the validity period check
// optional (Load accepts an expired credential so it can be inspected and
// renewed). It returns a concrete pointer so callers can enrich the error.
func parsePeerCertificate(chain []*x509.Certificate, now time.Time, checkTime bool) (*PeerCertificate, *RejectError) {
	switch {
	case len(chain) == 0:
		return nil, &RejectError{Reason: ReasonNoCertificate}
	case chain[0] == nil:
		return nil, &RejectError{Reason: ReasonMalformed, Err: errors.New("nil certificate")}
	}
	leaf := chain[0]
	hash := identity.HashCertificate(leaf.Raw)
	reject := func(r RejectReason, err error) *RejectError {
		return &RejectError{Reason: r, PeerHash: hash, Err: err}
	}
	if len(chain) > 1 {
		return nil, reject(ReasonTooManyCertificates, fmt.Errorf("got %d certificates, want exactly 1 self-signed certificate", len(chain)))
	}

	// A certificate without its DER (built by hand, not parsed) is never cached: the cache
	// vouches for bytes.
	cacheable := len(leaf.Raw) > 0
	var keys []identity.PublicKey
	var peerID identity.PeerID
	if v := verified.get(hash, leaf.Raw); cacheable && v != nil {
		keys, peerID = slices.Clone(v.keys), v.peerID
	} else {
		var rerr *RejectError
		if keys, rerr = checkSignatures(leaf, reject); rerr != nil {
			return nil, rerr
		}
		peerID = keys[0].PeerID()
		if cacheable {
			verified.add(hash, leaf.Raw, slices.Clone(keys), peerID)
		}
	}

	if checkTime && (now.Before(leaf.NotBefore) || now.After(leaf.NotAfter)) {
		e := reject(ReasonExpired, fmt.Errorf("valid from %s until %s, now is %s",
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
		e.PresentedKeys = keys
		return nil, e
	}

	return &PeerCertificate{Leaf: leaf, Hash: hash, Keys: keys, PeerID: peerID}, nil
}

// checkSignatures does the checks that depend on the certificate's bytes alone: critical
// extensions, the self-signature, and the identity keys' signatures of the TLS key. It
// returns the verified keys, primary first.
func checkSignatures(leaf *x509.Certificate, reject func(RejectReason, error) *RejectError) ([]identity.PublicKey, *RejectError) {
	for _, oid := range leaf.UnhandledCriticalExtensions {
		if !oid.Equal(oidLibp2pKey) && !oid.Equal(oidCoSigners) {
			return nil, reject(ReasonMalformed, fmt.Errorf("unknown critical extension %s", oid))
		}
	}
	if leaf.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm || leaf.PublicKey == nil {
		return nil, reject(ReasonMalformed, errors.New("unsupported public key algorithm"))
	}
	// CheckSignature rather than CheckSignatureFrom: a self-signed leaf is
	// not a CA, and CheckSignatureFrom would insist that it were.
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		return nil, reject(ReasonBadSignature, fmt.Errorf("self-signature: %v", err))
	}
	spki, err := marshalSPKI(leaf.PublicKey)
	if err != nil {
		return nil, reject(ReasonMalformed, fmt.Errorf("encoding certificate key: %v", err))
	}

	var primary, cosigners []byte
	var havePrimary, haveCoSigners bool
	for _, ext := range leaf.Extensions {
		switch {
		case ext.Id.Equal(oidLibp2pKey):
			primary, havePrimary = ext.Value, true
		case ext.Id.Equal(oidCoSigners):
			cosigners, haveCoSigners = ext.Value, true
		}
	}
	if !havePrimary {
		return nil, reject(ReasonNoIdentityKey, errors.New("no libp2p key extension"))
	}

	sk, err := decodeLibp2pExtension(primary)
	if err != nil {
		return nil, reject(ReasonMalformed, err)
	}
	key, err := sk.verify(spki)
	if err != nil {
		return nil, reject(extensionReason(err), fmt.Errorf("libp2p key extension: %w", err))
	}
	keys := []identity.PublicKey{key}

	if haveCoSigners {
		sks, err := decodeCoSignerExtension(cosigners)
		if err != nil {
			return nil, reject(ReasonMalformed, err)
		}
		for i, sk := range sks {
			k, err := sk.verify(spki)
			if err != nil {
				r := extensionReason(err)
				if r == ReasonNoIdentityKey {
					// The primary key identified the peer; a bad co-signer
					// entry is a malformed certificate, not a missing key.
					r = ReasonMalformed
				}
				return nil, reject(r, fmt.Errorf("co-signer %d: %w", i, err))
			}
			for _, seen := range keys {
				if seen.Equal(k) {
					return nil, reject(ReasonMalformed, fmt.Errorf("co-signer %d: key ed25519:%s signs twice", i, k.Short()))
				}
			}
			keys = append(keys, k)
		}
	}

	return keys, nil
}

func extensionReason(err error) RejectReason {
	switch {
	case errors.Is(err, errExtSignature):
		return ReasonBadSignature
	case errors.Is(err, errExtKeyType):
		return ReasonNoIdentityKey
	default:
		return ReasonMalformed
	}
}
