// Package sessiontest provides what tests of the layers above the session interface share:
// credentials, and connected pairs of sessions on every core, so that one test suite runs
// against QUIC and QMux alike.
package sessiontest

import (
	"context"
	"testing"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/qmux"
	"github.com/peerwire/peerwire/internal/quicsession"
	"github.com/peerwire/peerwire/internal/session"
)

// Credential makes a fresh identity and certificate, failing t on error.
func Credential(t testing.TB) *certs.Credential {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := certs.NewCredential(k, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CoreFactory names a core and makes a fresh instance of it.
type CoreFactory struct {
	Name string
	New  func() session.Core
	// Addr is the loopback listen address for the core.
	Addr string
}

// Cores lists every core; tests loop over it.
func Cores() []CoreFactory {
	return []CoreFactory{
		{Name: "quic", New: func() session.Core { return quicsession.New() }, Addr: "127.0.0.1:0"},
		{Name: "qmux", New: func() session.Core { return qmux.New() }, Addr: "127.0.0.1:0"},
	}
}

// Pair is a connected client and server session on one core.
type Pair struct {
	Client, Server       session.Conn
	ClientCfg, ServerCfg *session.Config
}

// Configs returns a client and a server config that trust each other by certificate hash,
// with the ALPN "test"; tune may adjust them before use.
func Configs(t testing.TB) (client, server *session.Config) {
	cc, sc := Credential(t), Credential(t)
	client = &session.Config{Credential: cc, Trust: &certs.TrustPolicy{Hashes: []identity.CertHash{sc.Hash()}}, ALPN: []string{"test"}}
	server = &session.Config{Credential: sc, Trust: &certs.TrustPolicy{Hashes: []identity.CertHash{cc.Hash()}}, ALPN: []string{"test"}}
	return client, server
}

// Connect dials and accepts one connection on core with the given configs, registering
// cleanups that close everything.
func Connect(t testing.TB, f CoreFactory, clientCfg, serverCfg *session.Config) *Pair {
	t.Helper()
	if clientCfg == nil || serverCfg == nil {
		clientCfg, serverCfg = Configs(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	core := f.New()
	t.Cleanup(func() { _ = core.Close() })
	ln, err := core.Listen(f.Addr, serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	type result struct {
		c   session.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		in, err := ln.Accept(ctx)
		if err != nil {
			accepted <- result{err: err}
			return
		}
		c, err := in.Accept(ctx)
		accepted <- result{c, err}
	}()
	client, err := core.Dial(ctx, ln.Addr().String(), clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CloseWithError(0, "") })
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = r.c.CloseWithError(0, "") })
	return &Pair{Client: client, Server: r.c, ClientCfg: clientCfg, ServerCfg: serverCfg}
}

// Refusal returns why a dial was refused: err when Dial failed, else the cause of c's
// Context once the listener closed it (a refusal may arrive after Dial returned). It fails t
// when the connection stays open for 10 seconds.
func Refusal(t testing.TB, c session.Conn, err error) error {
	t.Helper()
	if err != nil {
		return err
	}
	select {
	case <-c.Context().Done():
		return context.Cause(c.Context())
	case <-time.After(10 * time.Second):
		t.Fatal("the refused connection stayed open")
		return nil
	}
}
