// Package bench measures peerwire beside the systems it must beat, in one process and one
// run, on loopback and through a proxy that delays every packet.
//
// The systems are peerwire over QUIC and over QMux (through the public API, package
// nettransport), and the references: raw quic-go, crypto/tls 1.3 over TCP, plain TCP, and
// stock go-libp2p hosts over quic-v1 and over TCP (TLS 1.3 and yamux). The references carry
// messages on one stream per connection with one Write per 4-byte length-prefixed message,
// which is what a careful user would write by hand.
//
// The cases are small-message rates (64 B, 256 B, 4 KiB), bulk transfer, request/response
// round trips (p50 and p99), sequential mutually authenticated handshakes, heap per idle
// connection, and the fan-out of one message to many peers; and, through a userspace proxy
// adding 25 ms each way (package internal/delayproxy), a round trip, connect-to-first-message
// and bulk transfer, on peerwire and the references that cost little to add (Case.Systems).
// Figures are reported as absolute values and as ratios to the references measured in the
// same run, because absolute figures drift on shared machines; round trips and bulk
// transfers, whose figures drift most, are measured on every system side by side, in blocks
// that take turns (Case.RunTogether).
//
// The testing.B benchmarks of this package and `peer bench` run the same code; Run gathers a
// Report, which prints as a table (WriteTable), JSON (WriteJSON) or an SVG chart (WriteSVG).
// docs/BENCHMARKS.md describes every case and system.
package bench
