package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"reflect"
	"strings"

	"github.com/peerwire/peerwire/identity"
)

// ErrCertificateRejected matches, with errors.Is, every certificate rejection
// in either direction: [*RejectError] (we rejected the peer) and
// [*RejectedByPeerError] (the peer rejected us). Use errors.As to tell the two
// apart and to read their details.
var ErrCertificateRejected = errors.New("certificate rejected")

// ErrNoApplicationProtocol is returned by a handshake in which no ALPN
// protocol was negotiated. peerwire connections always carry an explicit
// protocol, so a peer that ignores ALPN (or a configuration with an empty
// protocol list) fails the handshake instead of connecting to an unknown
// application.
var ErrNoApplicationProtocol = errors.New("certs: no application protocol (ALPN) negotiated")

// ErrNoTrustedPeers is returned by [TrustPolicy.Validate] for a policy that
// trusts nobody.
var ErrNoTrustedPeers = errors.New("certs: no trusted peers configured; set AnyAuthenticated to accept any")

// RejectReason says why a peer's certificate was rejected.
type RejectReason int

// The reasons, from structural problems to trust decisions.
const (
	ReasonNoCertificate       RejectReason = iota + 1 // the peer sent no certificate
	ReasonTooManyCertificates                         // the peer sent a chain; peers present exactly one self-signed certificate
	ReasonMalformed                                   // the certificate or one of its extensions does not parse, or has an unknown critical extension
	ReasonBadSignature                                // the self-signature or an identity key's signature does not verify
	ReasonExpired                                     // now is after NotAfter or before NotBefore
	ReasonNoIdentityKey                               // no libp2p key extension, or its key is not Ed25519
	ReasonHashNotTrusted                              // well-formed, but its hash is not trusted (and no trusted key signed it)
	ReasonKeysNotTrusted                              // well-formed, but none of its identity keys is trusted (and its hash is not)
)

// String returns a short lowercase description of the reason.
func (r RejectReason) String() string {
	switch r {
	case ReasonNoCertificate:
		return "no certificate presented"
	case ReasonTooManyCertificates:
		return "more than one certificate presented"
	case ReasonMalformed:
		return "malformed certificate"
	case ReasonBadSignature:
		return "bad signature"
	case ReasonExpired:
		return "certificate expired or not yet valid"
	case ReasonNoIdentityKey:
		return "certificate not signed with an identity key"
	case ReasonHashNotTrusted:
		return "certificate hash not trusted"
	case ReasonKeysNotTrusted:
		return "identity keys not trusted"
	default:
		return fmt.Sprintf("RejectReason(%d)", int(r))
	}
}

// maxListed bounds how many keys or hashes an error message prints before
// summarising the rest, to keep it on one readable line.
const maxListed = 8

// RejectError reports that WE rejected the PEER's certificate. It is returned
// by [ParsePeerCertificate] and [TrustPolicy.Verify], and therefore by the
// handshake on the rejecting side.
type RejectError struct {
	Reason RejectReason
	// PeerAddr is the peer's address. The TLS layer does not know it; the
	// transport fills it in (see [SetPeerAddr]). It may be nil.
	PeerAddr net.Addr
	// PeerHash is the hash of the peer's leaf certificate; zero if it sent none.
	PeerHash identity.CertHash
	// PresentedKeys are the identity keys whose signatures verified, primary
	// first; empty if the certificate was rejected before they were checked.
	PresentedKeys []identity.PublicKey
	// TrustedKeys and TrustedHashes are what the policy trusted; filled by
	// TrustPolicy.Verify, empty from ParsePeerCertificate.
	TrustedKeys   []identity.PublicKey
	TrustedHashes []identity.CertHash
	// Err is the underlying detail, if any.
	Err error
}

// Error returns one readable line, for example
//
//	peer (127.0.0.1:4001) certificate rejected: identity keys not trusted: presented [ed25519:1a2b3c4d], trusted [ed25519:5e6f7a8b]
func (e *RejectError) Error() string {
	var b strings.Builder
	b.WriteString("peer ")
	if e.PeerAddr != nil {
		fmt.Fprintf(&b, "(%s) ", e.PeerAddr)
	}
	b.WriteString("certificate rejected: ")
	b.WriteString(e.Reason.String())
	switch e.Reason {
	case ReasonKeysNotTrusted:
		fmt.Fprintf(&b, ": presented %s, trusted %s", listKeys(e.PresentedKeys), listKeys(e.TrustedKeys))
		if len(e.TrustedHashes) > 0 {
			fmt.Fprintf(&b, "; certificate %s… not among trusted hashes %s", e.PeerHash.Short(), listHashes(e.TrustedHashes))
		}
	case ReasonHashNotTrusted:
		fmt.Fprintf(&b, ": presented %s…, trusted %s", e.PeerHash.Short(), listHashes(e.TrustedHashes))
		if len(e.PresentedKeys) > 0 {
			fmt.Fprintf(&b, "; certificate is signed by keys %s", listKeys(e.PresentedKeys))
		}
	case ReasonExpired:
		if len(e.PresentedKeys) > 0 {
			fmt.Fprintf(&b, " (certificate %s… signed by keys %s)", e.PeerHash.Short(), listKeys(e.PresentedKeys))
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying detail.
func (e *RejectError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrCertificateRejected].
func (e *RejectError) Is(target error) bool { return target == ErrCertificateRejected }

// RejectedByPeerError reports that the PEER rejected OUR certificate: the
// handshake failed with a certificate-related TLS alert from the peer. It
// lists the identity keys our certificate carries, which is what the peer's
// operator must add to its trust policy.
type RejectedByPeerError struct {
	// PeerAddr is the peer's address; may be nil.
	PeerAddr net.Addr
	// OurHash and OurKeys describe the certificate we presented.
	OurHash identity.CertHash
	OurKeys []identity.PublicKey
	// Alert is the TLS alert the peer sent (42 bad_certificate,
	// 116 certificate_required, 45 certificate_expired, ...), 0 if unknown.
	Alert uint8
	// Err is the underlying handshake or connection error.
	Err error
}

// NewRejectedByPeerError describes a rejection of c by the peer at addr.
func NewRejectedByPeerError(c *Credential, addr net.Addr, alert uint8, err error) *RejectedByPeerError {
	e := &RejectedByPeerError{PeerAddr: addr, Alert: alert, Err: err}
	if c != nil {
		e.OurHash = c.Hash()
		e.OurKeys = c.IdentityKeys()
	}
	return e
}

// Error returns one readable line, for example
//
//	my certificate was rejected by peer (127.0.0.1:4001): bad_certificate; my certificate 1a2b3c4d… is signed by keys [ed25519:1a2b3c4d]
func (e *RejectedByPeerError) Error() string {
	var b strings.Builder
	b.WriteString("my certificate was rejected by peer")
	if e.PeerAddr != nil {
		fmt.Fprintf(&b, " (%s)", e.PeerAddr)
	}
	switch {
	case e.Alert != 0:
		b.WriteString(": ")
		b.WriteString(AlertName(e.Alert))
	case e.Err != nil:
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	fmt.Fprintf(&b, "; my certificate %s… is signed by keys %s", e.OurHash.Short(), listKeys(e.OurKeys))
	return b.String()
}

// Unwrap returns the underlying error.
func (e *RejectedByPeerError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrCertificateRejected].
func (e *RejectedByPeerError) Is(target error) bool { return target == ErrCertificateRejected }

// SetPeerAddr records addr in the first [*RejectError] or
// [*RejectedByPeerError] in err's chain, unless that error already has an
// address, and reports whether err holds such an error. Transports call it on handshake errors, since the TLS
// verification callback cannot know the address.
func SetPeerAddr(err error, addr net.Addr) bool {
	if re, ok := errors.AsType[*RejectError](err); ok {
		if re.PeerAddr == nil {
			re.PeerAddr = addr
		}
		return true
	}
	if rp, ok := errors.AsType[*RejectedByPeerError](err); ok {
		if rp.PeerAddr == nil {
			rp.PeerAddr = addr
		}
		return true
	}
	return false
}

// PeerAlert returns the TLS alert the peer sent, if err is (or wraps) the
// error crypto/tls reports for a received alert on a TLS-over-TCP connection.
// (crypto/tls does not export that type; QUIC stacks report received alerts
// as crypto errors 0x100+alert instead, which the QUIC transport decodes.)
func PeerAlert(err error) (alert uint8, ok bool) {
	opErr, ok := errors.AsType[*net.OpError](err)
	if !ok || opErr.Op != "remote error" || opErr.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(opErr.Err)
	t := v.Type()
	if v.Kind() != reflect.Uint8 || t.PkgPath() != "crypto/tls" {
		return 0, false
	}
	return uint8(v.Uint()), true
}

// IsCertificateAlert reports whether a TLS alert received from a peer means
// the peer refused our certificate (as opposed to, say, a protocol or ALPN
// failure).
func IsCertificateAlert(alert uint8) bool {
	switch alert {
	case 42, 43, 44, 45, 46, 48, 49, 116:
		// bad_certificate, unsupported_certificate, certificate_revoked,
		// certificate_expired, certificate_unknown, unknown_ca,
		// access_denied, certificate_required
		return true
	}
	return false
}

// alertNames are the TLS alert descriptions of RFC 8446 section 6 (and RFC
// 5246 for the ones TLS 1.3 retired), plus ECH's ech_required.
var alertNames = map[uint8]string{
	0:   "close_notify",
	10:  "unexpected_message",
	20:  "bad_record_mac",
	21:  "decryption_failed",
	22:  "record_overflow",
	30:  "decompression_failure",
	40:  "handshake_failure",
	41:  "no_certificate",
	42:  "bad_certificate",
	43:  "unsupported_certificate",
	44:  "certificate_revoked",
	45:  "certificate_expired",
	46:  "certificate_unknown",
	47:  "illegal_parameter",
	48:  "unknown_ca",
	49:  "access_denied",
	50:  "decode_error",
	51:  "decrypt_error",
	60:  "export_restriction",
	70:  "protocol_version",
	71:  "insufficient_security",
	80:  "internal_error",
	86:  "inappropriate_fallback",
	90:  "user_canceled",
	100: "no_renegotiation",
	109: "missing_extension",
	110: "unsupported_extension",
	111: "certificate_unobtainable",
	112: "unrecognized_name",
	113: "bad_certificate_status_response",
	114: "bad_certificate_hash_value",
	115: "unknown_psk_identity",
	116: "certificate_required",
	120: "no_application_protocol",
	121: "ech_required",
}

// AlertName returns the RFC name of a TLS alert ("bad_certificate"), or
// "alert(N)" for an unassigned value.
func AlertName(alert uint8) string {
	if n, ok := alertNames[alert]; ok {
		return n
	}
	return fmt.Sprintf("alert(%d)", alert)
}

// InsecureKeyFileError is returned by [Load] for a private key file that
// group or others may read or write. The key would already be exposed, so
// Load refuses to use it rather than silently continuing.
type InsecureKeyFileError struct {
	Path string      // the key file
	Mode fs.FileMode // its permission bits
}

// Error names the file, its mode and the fix.
func (e *InsecureKeyFileError) Error() string {
	return fmt.Sprintf("certs: key file %s is accessible by group or others (mode %#o); restrict it with: chmod 600 %s",
		e.Path, uint32(e.Mode.Perm()), e.Path)
}

func listKeys(keys []identity.PublicKey) string {
	if len(keys) == 0 {
		return "none"
	}
	parts := make([]string, 0, min(len(keys), maxListed)+1)
	for i, k := range keys {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(keys)-maxListed))
			break
		}
		parts = append(parts, identity.PublicKeyPrefix+k.Short())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func listHashes(hashes []identity.CertHash) string {
	if len(hashes) == 0 {
		return "none"
	}
	parts := make([]string, 0, min(len(hashes), maxListed)+1)
	for i, h := range hashes {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(hashes)-maxListed))
			break
		}
		parts = append(parts, h.Short())
	}
	return "[" + strings.Join(parts, " ") + "]"
}
