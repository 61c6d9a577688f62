// Package certs turns a node's identity key into TLS credentials and decides
// which peers to trust.
//
// # Credentials
//
// [NewCredential] creates a fresh ECDSA P-256 TLS key and a self-signed X.509
// certificate for it. The certificate carries the libp2p key extension
// (OID 1.3.6.1.4.1.53594.1.1), in which the node's Ed25519 identity key signs
// the TLS key, so the same certificate authenticates the node to peerwire
// peers and to stock go-libp2p peers. Optional co-signer keys add their own
// signatures of the TLS key in a second, non-critical extension
// ([CoSignerExtensionOID]) that libp2p ignores. [Save] and [Load] keep a
// credential in a directory of PEM files with owner-only key permissions.
//
// # Trust
//
// There is no certificate authority. A [TrustPolicy] lists the certificate
// hashes and identity keys this node accepts (or, only when asked for
// explicitly, any well-formed peer). [ServerConfig] and [ClientConfig] build
// TLS 1.3 configurations for mutual authentication in which all peer
// verification is done by this package, in tls.Config.VerifyConnection.
//
// # Errors
//
// Both directions of a certificate rejection are typed and match
// [ErrCertificateRejected] with errors.Is: [*RejectError] when this node
// rejected the peer's certificate (with the reason, the peer's hash and keys
// and what was trusted), [*RejectedByPeerError] when the peer rejected ours
// (with the TLS alert and the hash and keys of our certificate, so an operator
// can see which identity the peer would have to trust). Error texts print
// keys and hashes as short 8-digit prefixes and fit on one line.
package certs
