// Package identity defines who a peerwire node is.
//
// A node owns one long-lived Ed25519 identity key ([PrivateKey]). Its TLS
// certificates are short-lived and carry a signature by that key (see package
// certs), so a node can be named in two ways:
//
//   - by its key identity: the Ed25519 [PublicKey], printed "ed25519:<64 hex>",
//     or the equivalent libp2p [PeerID], printed "12D3KooW...". Both stay the
//     same when the certificate is rotated.
//   - by its certificate identity: the [CertHash], the SHA-256 of the leaf
//     certificate's DER, printed as 64 lowercase hex digits. It changes with
//     every new certificate and is what a connection's RemoteIdentity reports.
//
// All types are small opaque values: compare them with Equal (constant time),
// print them with String, and store them as text (they implement
// encoding.TextMarshaler). Their zero values mean "unset" (see IsZero) and
// marshal to empty text.
package identity
