package libp2pquic_test

import (
	"fmt"
	"log"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/peerwire/peerwire/nettransport/libp2pquic"
)

// A host with peerwire's QUIC transport in place of go-libp2p's, and go-libp2p's TCP
// transport beside it. go-libp2p fills NewTransport's parameters (host key, gater, resource
// manager); options come after the constructor.
func ExampleNewTransport() {
	h, err := libp2p.New(
		libp2p.Transport(libp2pquic.NewTransport, libp2pquic.WithMaxIncomingStreams(512)),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	fmt.Println(len(h.Addrs()), "addresses")
	// Output: 2 addresses
}
