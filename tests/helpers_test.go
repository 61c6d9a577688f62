package tests

import (
	"context"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/nettransport"
)

// cores lists a loopback listen address per core; every API test runs on each.
var cores = []struct {
	name   string
	listen string
}{
	{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	{"qmux", "/ip4/127.0.0.1/tcp/0/qmux"},
}

func forEachCore(t *testing.T, f func(t *testing.T, listen ma.Multiaddr)) {
	for _, c := range cores {
		t.Run(c.name, func(t *testing.T) {
			f(t, ma.StringCast(c.listen))
		})
	}
}

func newCert(t testing.TB) *certs.Credential {
	t.Helper()
	k, err := identity.GenerateKey()
	require.NoError(t, err)
	c, err := certs.NewCredential(k, certs.Options{})
	require.NoError(t, err)
	return c
}

// trusting returns a credential for c that trusts the given certificates by hash.
func trusting(c *certs.Credential, peers ...*certs.Credential) *nettransport.Credential {
	cred := &nettransport.Credential{Certificate: c}
	for _, p := range peers {
		cred.Trust.Hashes = append(cred.Trust.Hashes, p.Hash())
	}
	return cred
}

func newTransport(t testing.TB, cfg nettransport.Config) nettransport.Transport {
	t.Helper()
	tr, err := nettransport.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type accepted struct {
	conn nettransport.Connection
	err  error
}

// acceptOne accepts the next request on l in the background.
func acceptOne(ctx context.Context, l nettransport.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		in, err := l.Accept(ctx)
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		c, err := in.Accept(ctx)
		ch <- accepted{c, err}
	}()
	return ch
}

// setup is a connected pair of transports and connections.
type setup struct {
	client, server nettransport.Connection
	clientCert     *certs.Credential
	serverCert     *certs.Credential
}

// connect builds two transports with the given configs, listens on listen and dials it.
func connect(t *testing.T, listen ma.Multiaddr, clientCfg, serverCfg nettransport.Config) *setup {
	t.Helper()
	ctx := testCtx(t)
	cc, sc := newCert(t), newCert(t)
	str := newTransport(t, serverCfg)
	ctr := newTransport(t, clientCfg)
	l, err := str.Listen(listen, []string{"test/1"}, trusting(sc, cc))
	require.NoError(t, err)
	got := acceptOne(ctx, l)
	client, err := ctr.Dial(ctx, l.Addr(), []string{"test/1"}, trusting(cc, sc))
	require.NoError(t, err)
	a := <-got
	require.NoError(t, a.err)
	t.Cleanup(func() {
		_ = client.CloseWithError(0, "")
		_ = a.conn.CloseWithError(0, "")
	})
	return &setup{client: client, server: a.conn, clientCert: cc, serverCert: sc}
}
