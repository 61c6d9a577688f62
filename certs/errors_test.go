package certs

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/identity"
)

var testAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4001}

func keyWithPrefix(t *testing.T) identity.PublicKey {
	t.Helper()
	return newKey(t).Public()
}

func TestRejectErrorTextKeysNotTrusted(t *testing.T) {
	presented, trusted1, trusted2 := keyWithPrefix(t), keyWithPrefix(t), keyWithPrefix(t)
	e := &RejectError{
		Reason:        ReasonKeysNotTrusted,
		PeerAddr:      testAddr,
		PeerHash:      hashOf(t, "peer"),
		PresentedKeys: []identity.PublicKey{presented},
		TrustedKeys:   []identity.PublicKey{trusted1, trusted2},
	}
	want := fmt.Sprintf("peer (127.0.0.1:4001) certificate rejected: identity keys not trusted: presented [ed25519:%s], trusted [ed25519:%s ed25519:%s]",
		presented.Short(), trusted1.Short(), trusted2.Short())
	require.Equal(t, want, e.Error())
	require.NotContains(t, e.Error(), "\n")
}

func TestRejectErrorTextHashNotTrusted(t *testing.T) {
	peerHash, trusted := hashOf(t, "peer"), hashOf(t, "trusted")
	key := keyWithPrefix(t)
	e := &RejectError{
		Reason:        ReasonHashNotTrusted,
		PeerAddr:      testAddr,
		PeerHash:      peerHash,
		PresentedKeys: []identity.PublicKey{key},
		TrustedHashes: []identity.CertHash{trusted},
	}
	require.Equal(t, fmt.Sprintf("peer (127.0.0.1:4001) certificate rejected: certificate hash not trusted: presented %s…, trusted [%s]; certificate is signed by keys [ed25519:%s]",
		peerHash.Short(), trusted.Short(), key.Short()), e.Error())
}

func TestRejectErrorTextStructural(t *testing.T) {
	for reason, want := range map[RejectReason]string{
		ReasonNoCertificate: "peer certificate rejected: no certificate presented",
		ReasonNoIdentityKey: "peer certificate rejected: certificate not signed with an identity key: no libp2p key extension",
		ReasonMalformed:     "peer certificate rejected: malformed certificate: no libp2p key extension",
	} {
		e := &RejectError{Reason: reason}
		if reason != ReasonNoCertificate {
			e.Err = errors.New("no libp2p key extension")
		}
		require.Equal(t, want, e.Error())
	}
}

func TestRejectErrorTextFromVerify(t *testing.T) {
	c := newCred(t, newKey(t))
	trusted := keyWithPrefix(t)
	_, err := (&TrustPolicy{Keys: []identity.PublicKey{trusted}}).Verify(chainOf(c))
	require.True(t, SetPeerAddr(err, testAddr))
	require.Equal(t, fmt.Sprintf("peer (127.0.0.1:4001) certificate rejected: identity keys not trusted: presented [ed25519:%s], trusted [ed25519:%s]",
		c.IdentityKey().Public().Short(), trusted.Short()), err.Error())

	// SetPeerAddr keeps an address already set and works through wrapping.
	wrapped := fmt.Errorf("handshake: %w", err)
	require.True(t, SetPeerAddr(wrapped, &net.TCPAddr{}))
	require.Contains(t, wrapped.Error(), "127.0.0.1:4001")
	require.False(t, SetPeerAddr(errors.New("other"), testAddr))
}

func TestRejectErrorTextLongLists(t *testing.T) {
	var keys []identity.PublicKey
	for range 20 {
		keys = append(keys, keyWithPrefix(t))
	}
	e := &RejectError{Reason: ReasonKeysNotTrusted, PresentedKeys: keys[:1], TrustedKeys: keys}
	require.Contains(t, e.Error(), "(+12 more)")
	require.Less(t, len(e.Error()), 300)
}

func TestRejectErrorTextEmptyTrust(t *testing.T) {
	c := newCred(t, newKey(t))
	_, err := (&TrustPolicy{}).Verify(chainOf(c))
	require.Contains(t, err.Error(), "trusted none")
	require.Contains(t, err.Error(), "no trusted peers configured")
}

func TestRejectedByPeerErrorText(t *testing.T) {
	c := newCred(t, newKey(t), newKey(t))
	keys := c.IdentityKeys()
	e := NewRejectedByPeerError(c, testAddr, 42, errors.New("remote error: tls: bad certificate"))
	require.Equal(t, fmt.Sprintf("my certificate was rejected by peer (127.0.0.1:4001): bad_certificate; my certificate %s… is signed by keys [ed25519:%s ed25519:%s]",
		c.Hash().Short(), keys[0].Short(), keys[1].Short()), e.Error())

	// Without an alert the underlying error explains; without an address the
	// parentheses go.
	e = NewRejectedByPeerError(c, nil, 0, errors.New("connection closed"))
	require.True(t, strings.HasPrefix(e.Error(), "my certificate was rejected by peer: connection closed; my certificate "), e.Error())
}

func TestErrorsMatchSentinel(t *testing.T) {
	inner := errors.New("inner")
	re := &RejectError{Reason: ReasonMalformed, Err: inner}
	rp := &RejectedByPeerError{Alert: 42, Err: inner}
	for _, err := range []error{re, rp, fmt.Errorf("wrapped: %w", re), fmt.Errorf("wrapped: %w", rp)} {
		require.ErrorIs(t, err, ErrCertificateRejected)
		require.ErrorIs(t, err, inner, "Unwrap reaches the detail")
	}
	require.NotErrorIs(t, errors.New("x"), ErrCertificateRejected)

	var gotRe *RejectError
	var gotRp *RejectedByPeerError
	require.True(t, errors.As(fmt.Errorf("w: %w", re), &gotRe))
	require.False(t, errors.As(re, &gotRp), "the two directions are different types")
}

func TestRejectReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNoCertificate; r <= ReasonKeysNotTrusted; r++ {
		s := r.String()
		require.NotContains(t, s, "RejectReason(")
		require.False(t, seen[s], "duplicate %q", s)
		seen[s] = true
	}
	require.Equal(t, "RejectReason(99)", RejectReason(99).String())
	require.Equal(t, "identity keys not trusted", ReasonKeysNotTrusted.String())
}

func TestAlertName(t *testing.T) {
	require.Equal(t, "bad_certificate", AlertName(42))
	require.Equal(t, "certificate_required", AlertName(116))
	require.Equal(t, "certificate_expired", AlertName(45))
	require.Equal(t, "no_application_protocol", AlertName(120))
	require.Equal(t, "alert(200)", AlertName(200))
}

func TestPeerAlertIgnoresOtherErrors(t *testing.T) {
	for _, err := range []error{
		nil,
		errors.New("remote error: tls: bad certificate"), // text is never trusted
		&net.OpError{Op: "read", Err: errors.New("x")},
		&net.OpError{Op: "remote error", Err: errors.New("x")},
	} {
		_, ok := PeerAlert(err)
		require.False(t, ok, "%v", err)
	}
}
