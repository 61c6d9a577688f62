package certs

import (
	"crypto/tls"
	"net"
	"slices"
)

// ServerConfig returns a TLS configuration for accepting connections
// authenticated by c and checked against p. See ClientConfig for the
// properties both share; in addition the server requires a client
// certificate (tls.RequireAnyClientCert: any certificate, since the chain is
// checked by p, not by crypto/tls) and picks from alpn in its own order of
// preference.
//
// ServerConfig panics if c or p is nil: a configuration without a credential
// or without a policy is a programming error that must not turn into a
// server that accepts anyone.
func ServerConfig(c *Credential, p *TrustPolicy, alpn []string) *tls.Config {
	cfg := baseConfig(c, p, alpn)
	cfg.ClientAuth = tls.RequireAnyClientCert
	return cfg
}

// ClientConfig returns a TLS configuration for dialing with credential c and
// checking the server against p. Shared properties of both configurations:
//
//   - TLS 1.3 only; peers authenticate each other with self-signed
//     certificates and there is no older version to fall back to.
//   - All certificate verification is ours: crypto/tls's verification against
//     system roots is switched off (InsecureSkipVerify on the client,
//     RequireAnyClientCert on the server) and VerifyConnection runs
//     [TrustPolicy.VerifyConnection]. It runs on every handshake, resumed or
//     not. A rejection is returned from the handshake as a [*RejectError] and
//     the peer receives a bad_certificate alert.
//   - An ALPN protocol must be negotiated, or the handshake fails with
//     [ErrNoApplicationProtocol]; alpn must therefore not be empty.
//   - Session tickets are disabled: a resumed session would skip the
//     certificate exchange, so a peer's identity would rest on a ticket
//     rather than on a fresh proof of its key, tickets would outlive
//     certificate rotation and trust changes, and 0-RTT data could be
//     replayed. go-libp2p disables them for the same reasons.
//   - No ServerName is needed; peers are identified by keys, not names.
//
// p is copied: later changes to it do not affect the returned configuration.
// ClientConfig panics if c or p is nil.
func ClientConfig(c *Credential, p *TrustPolicy, alpn []string) *tls.Config {
	cfg := baseConfig(c, p, alpn)
	cfg.InsecureSkipVerify = true // verification is done in VerifyConnection
	cert := c.TLSCertificate()
	// Always send our certificate: with only Certificates set, crypto/tls
	// silently sends none if the server's signature algorithms do not match.
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	return cfg
}

func baseConfig(c *Credential, p *TrustPolicy, alpn []string) *tls.Config {
	if c == nil {
		panic("certs: nil Credential")
	}
	if p == nil {
		panic(errNilPolicy)
	}
	policy := p.clone()
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{c.TLSCertificate()},
		NextProtos:             slices.Clone(alpn),
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := policy.VerifyConnection(cs, nil)
			return err
		},
	}
}

// VerifyConnection is the check every peerwire handshake makes once the peer's
// certificate is in, and the one the TLS configurations of [ServerConfig] and
// [ClientConfig] install. A transport that wants the verified peer (or a
// rejection's details) replaces tls.Config.VerifyConnection with a function
// that calls this one, never with a check of its own, so that every promise
// made here holds on every core:
//
//   - the peer's chain satisfies p ([TrustPolicy.Verify]); a refusal is a
//     [*RejectError] with remote filled in (nil leaves it empty);
//   - an application protocol was negotiated, or [ErrNoApplicationProtocol].
//     RFC 7301 lets a TLS server and client that share no ALPN carry on
//     without one, and crypto/tls over TCP does; QUIC (RFC 9001 §8.1) and QMux
//     (draft-ietf-quic-qmux-02 §8.1) make it mandatory, and so does peerwire
//     on both.
func (p *TrustPolicy) VerifyConnection(cs tls.ConnectionState, remote net.Addr) (*PeerCertificate, error) {
	peer, err := p.Verify(cs.PeerCertificates)
	if err != nil {
		SetPeerAddr(err, remote)
		return nil, err
	}
	if cs.NegotiatedProtocol == "" {
		return nil, ErrNoApplicationProtocol
	}
	return peer, nil
}
