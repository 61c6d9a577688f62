package certs

import (
	"bytes"
	"container/list"
	"sync"

	"github.com/peerwire/peerwire/identity"
)

// verifiedCacheSize bounds the certificates remembered as verified. An entry holds the
// certificate's DER (a few hundred bytes) and its keys, so the cache stays well under a
// megabyte while covering every peer of a typical node.
const verifiedCacheSize = 512

// verified remembers certificates whose structure and signatures checked out, so that a peer
// reconnecting with the same certificate costs no self-signature and no identity-key
// signature checks: those depend on the certificate's bytes alone, and verifying them again
// would give the same answer. Everything that depends on the moment or on the policy (the
// validity period, the chain length, the trust decision) is still checked on every handshake,
// and the TLS handshake itself still proves that the peer holds the certificate's key.
//
// Only successful verifications are stored, keyed by the certificate hash and compared by
// the full DER on a hit, so a certificate that failed once is checked in full every time.
var verified = newVerifiedCache(verifiedCacheSize)

// verifiedCert is what the signature checks proved about one certificate.
type verifiedCert struct {
	hash   identity.CertHash
	der    []byte
	keys   []identity.PublicKey // read-only: callers get copies
	peerID identity.PeerID
}

// verifiedCache is a bounded LRU of verifiedCert, safe for concurrent use.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[identity.CertHash]*list.Element // of *verifiedCert
	order   list.List                           // most recently used first
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[identity.CertHash]*list.Element)}
}

// get returns the verified result for the certificate with this hash and DER, or nil.
func (c *verifiedCache) get(hash identity.CertHash, der []byte) *verifiedCert {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok {
		return nil
	}
	v := e.Value.(*verifiedCert)
	if !bytes.Equal(v.der, der) {
		return nil
	}
	c.order.MoveToFront(e)
	return v
}

// add records a certificate whose checks all passed. der is copied.
func (c *verifiedCache) add(hash identity.CertHash, der []byte, keys []identity.PublicKey, peerID identity.PeerID) {
	v := &verifiedCert{hash: hash, der: bytes.Clone(der), keys: keys, peerID: peerID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[hash]; ok {
		e.Value = v
		c.order.MoveToFront(e)
		return
	}
	c.entries[hash] = c.order.PushFront(v)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*verifiedCert).hash)
	}
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
