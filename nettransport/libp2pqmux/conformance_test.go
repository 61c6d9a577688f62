package libp2pqmux_test

import (
	"crypto/rand"
	"testing"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ttransport "github.com/libp2p/go-libp2p/p2p/transport/testsuite"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/nettransport/libp2pqmux"
)

func newKey(t testing.TB) (ic.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := ic.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(t, err)
	return k, id
}

func newTransport(t testing.TB, key ic.PrivKey, opts ...libp2pqmux.Option) tpt.Transport {
	t.Helper()
	tr, err := libp2pqmux.NewTransport(key, nil, nil, nil, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.(interface{ Close() error }).Close()) })
	return tr
}

// TestConformance runs go-libp2p's transport suite, every subtest, with our transport on
// both sides.
func TestConformance(t *testing.T) {
	ka, peerA := newKey(t)
	kb, _ := newKey(t)
	ttransport.SubtestTransport(t, newTransport(t, ka), newTransport(t, kb), "/ip4/127.0.0.1/tcp/0/qmux", peerA)
}
