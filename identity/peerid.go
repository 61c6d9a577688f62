package identity

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerID is the libp2p peer ID of an Ed25519 identity key: the identity
// multihash of the key's libp2p protobuf encoding, printed in base58
// ("12D3KooW..."). It names the same node as its [PublicKey], in the form
// libp2p tools and multiaddrs (/p2p/<id>) use. Because the key is embedded in
// the ID, a PeerID always yields its key; peer IDs that only hash a key
// (RSA, or "Qm..." SHA-256 IDs) are not node identities here.
//
// The zero value means "no peer" and prints as the empty string.
type PeerID struct {
	k PublicKey
}

var (
	errNotIdentityHash = errors.New("peer ID does not embed its public key (not an identity multihash)")
	errNotCanonical    = errors.New("peer ID is not the canonical encoding of its key")
)

// ParsePeerID parses a libp2p peer ID, normally the base58 "12D3KooW..." form
// (libp2p's CIDv1 "bafz..." form is also accepted). It must embed an Ed25519
// key in an identity multihash; anything else is an error.
func ParsePeerID(s string) (PeerID, error) {
	const kind = "peer ID"
	id, err := peer.Decode(s)
	if err != nil {
		return PeerID{}, parseError(kind, s, err)
	}
	return peerIDFromLibp2p(kind, s, id)
}

// PeerIDFromLibp2p converts a libp2p peer.ID, with the same rules as
// ParsePeerID.
func PeerIDFromLibp2p(id peer.ID) (PeerID, error) {
	return peerIDFromLibp2p("peer ID", id.String(), id)
}

func peerIDFromLibp2p(kind, input string, id peer.ID) (PeerID, error) {
	pk, err := id.ExtractPublicKey()
	if errors.Is(err, peer.ErrNoPublicKey) {
		return PeerID{}, parseError(kind, input, errNotIdentityHash)
	}
	if err != nil {
		return PeerID{}, parseError(kind, input, err)
	}
	k, err := PublicKeyFromLibp2p(pk)
	if err != nil {
		return PeerID{}, parseError(kind, input, err)
	}
	// Reject IDs that decode to our key but are not byte-identical to the ID
	// libp2p derives from it (odd protobuf encodings), so that equal keys
	// always mean equal IDs.
	if canonical := k.PeerID().Libp2p(); canonical != id {
		return PeerID{}, parseError(kind, input, errNotCanonical)
	}
	return PeerID{k: k}, nil
}

// Libp2p returns the ID as a libp2p peer.ID. It returns "" for the zero
// PeerID.
func (p PeerID) Libp2p() peer.ID {
	if p.IsZero() {
		return ""
	}
	id, err := peer.IDFromPublicKey(p.k.Libp2p())
	if err != nil {
		// Cannot happen: marshalling an Ed25519 key does not fail.
		panic(fmt.Sprintf("identity: deriving libp2p peer ID: %v", err))
	}
	return id
}

// PublicKey returns the identity key embedded in the ID.
func (p PeerID) PublicKey() PublicKey { return p.k }

// Equal reports whether p and o are the same peer, in constant time.
func (p PeerID) Equal(o PeerID) bool { return p.k.Equal(o.k) }

// IsZero reports whether p is the zero (unset) peer ID.
func (p PeerID) IsZero() bool { return p.k.IsZero() }

// String returns the base58 form, "12D3KooW...", or "" for the zero PeerID.
func (p PeerID) String() string {
	if p.IsZero() {
		return ""
	}
	return p.Libp2p().String()
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (p PeerID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, accepting what
// ParsePeerID accepts; empty text yields the zero PeerID.
func (p *PeerID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*p = PeerID{}
		return nil
	}
	id, err := ParsePeerID(string(text))
	if err != nil {
		return err
	}
	*p = id
	return nil
}
