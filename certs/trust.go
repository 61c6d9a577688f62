package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/peerwire/peerwire/identity"
)

// TrustPolicy decides which peers this node accepts. A peer whose certificate
// passes [ParsePeerCertificate] is trusted if its certificate hash is in
// Hashes, or any of its verified identity keys is in Keys, or
// AnyAuthenticated is set. The zero value trusts nobody (see Validate).
//
// Trusting a hash trusts one certificate; trusting a key trusts every
// certificate that key signs, including future ones, so it survives
// certificate rotation.
//
// A TrustPolicy is plain data: build it, then hand it to ServerConfig or
// ClientConfig, which take a copy. Do not modify it while another goroutine
// calls Verify.
type TrustPolicy struct {
	// Hashes are trusted certificate hashes.
	Hashes []identity.CertHash
	// Keys are trusted identity keys (primary or co-signer).
	Keys []identity.PublicKey
	// AnyAuthenticated accepts any peer whose certificate is well-formed and
	// correctly signed by an Ed25519 identity key, whatever the key. It must
	// be set explicitly: an empty policy does not mean "accept all".
	AnyAuthenticated bool
}

// Add trusts one peer given in text: 64 hex digits are a certificate hash,
// "ed25519:<64 hex>" is an identity key, and a libp2p peer ID ("12D3KooW...")
// trusts the key it embeds. Entries already present are not added twice.
func (p *TrustPolicy) Add(id string) error {
	switch {
	case strings.HasPrefix(id, identity.PublicKeyPrefix):
		k, err := identity.ParsePublicKey(id)
		if err != nil {
			return err
		}
		p.addKey(k)
	case len(id) == 64:
		h, err := identity.ParseCertHash(id)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(p.Hashes, h.Equal) {
			p.Hashes = append(p.Hashes, h)
		}
	default:
		pid, err := identity.ParsePeerID(id)
		if err != nil {
			return fmt.Errorf("certs: %q is not a certificate hash (64 hex digits), an identity key (ed25519:<64 hex>) or a peer ID (12D3KooW...): %w",
				truncate(id), err)
		}
		p.addKey(pid.PublicKey())
	}
	return nil
}

func (p *TrustPolicy) addKey(k identity.PublicKey) {
	if !slices.ContainsFunc(p.Keys, k.Equal) {
		p.Keys = append(p.Keys, k)
	}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Validate reports configuration mistakes: [ErrNoTrustedPeers] for a policy
// that trusts nobody, or an error for a zero hash or key in the lists (which
// usually means an entry was never filled in). Transports call it when they
// are created, so a misconfigured node fails at start rather than rejecting
// every peer.
func (p *TrustPolicy) Validate() error {
	if p == nil || (len(p.Hashes) == 0 && len(p.Keys) == 0 && !p.AnyAuthenticated) {
		return ErrNoTrustedPeers
	}
	for i, h := range p.Hashes {
		if h.IsZero() {
			return fmt.Errorf("certs: trusted hash %d is zero", i)
		}
	}
	for i, k := range p.Keys {
		if k.IsZero() {
			return fmt.Errorf("certs: trusted key %d is zero", i)
		}
	}
	return nil
}

// Verify checks a peer's certificate chain with [ParsePeerCertificate] at the
// current time, then applies the policy. Every failure is a [*RejectError]
// that lists what the peer presented and what this policy trusts.
func (p *TrustPolicy) Verify(chain []*x509.Certificate) (*PeerCertificate, error) {
	pc, rerr := p.verifyAt(chain, time.Now())
	if rerr != nil {
		return nil, rerr
	}
	return pc, nil
}

func (p *TrustPolicy) verifyAt(chain []*x509.Certificate, now time.Time) (*PeerCertificate, *RejectError) {
	var q TrustPolicy
	if p != nil {
		q = *p
	}
	pc, rerr := parsePeerCertificate(chain, now, true)
	if rerr != nil {
		rerr.TrustedKeys = slices.Clone(q.Keys)
		rerr.TrustedHashes = slices.Clone(q.Hashes)
		return nil, rerr
	}
	if q.trusts(pc) {
		return pc, nil
	}
	e := &RejectError{
		Reason:        ReasonKeysNotTrusted,
		PeerHash:      pc.Hash,
		PresentedKeys: pc.Keys,
		TrustedKeys:   slices.Clone(q.Keys),
		TrustedHashes: slices.Clone(q.Hashes),
	}
	if len(q.Keys) == 0 && len(q.Hashes) > 0 {
		e.Reason = ReasonHashNotTrusted
	}
	if len(q.Keys) == 0 && len(q.Hashes) == 0 {
		e.Err = ErrNoTrustedPeers
	}
	return nil, e
}

// trusts applies the policy to a verified certificate. The lists are walked
// to the end whatever matches, so timing does not reveal which entry did.
func (p *TrustPolicy) trusts(pc *PeerCertificate) bool {
	ok := p.AnyAuthenticated
	for _, h := range p.Hashes {
		if h.Equal(pc.Hash) {
			ok = true
		}
	}
	for _, k := range p.Keys {
		for _, pk := range pc.Keys {
			if k.Equal(pk) {
				ok = true
			}
		}
	}
	return ok
}

// clone returns a deep copy, so a tls.Config keeps the policy it was built
// with even if the caller's policy changes later.
func (p *TrustPolicy) clone() *TrustPolicy {
	return &TrustPolicy{
		Hashes:           slices.Clone(p.Hashes),
		Keys:             slices.Clone(p.Keys),
		AnyAuthenticated: p.AnyAuthenticated,
	}
}

var errNilPolicy = errors.New("certs: nil TrustPolicy")
