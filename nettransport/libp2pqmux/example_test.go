package libp2pqmux_test

import (
	"fmt"
	"log"

	"github.com/libp2p/go-libp2p"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
)

// QMux beside go-libp2p's default transports: the host keeps TCP, QUIC, WebTransport and
// WebRTC, and adds /tcp/<port>/qmux.
func ExampleNewTransport() {
	h, err := libp2p.New(
		libp2p.ChainOptions(libp2p.DefaultTransports, libp2p.Transport(libp2pqmux.NewTransport)),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/qmux"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	for _, a := range h.Addrs() {
		if _, last := ma.SplitLast(a); last.Code() == libp2pqmux.P_QMUX {
			fmt.Println("listening on QMux")
		}
	}
	// Output: listening on QMux
}
