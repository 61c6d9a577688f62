package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/nettransport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line in process.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// initHome creates an identity in a new directory and returns the directory and the
// credential.
func initHome(t *testing.T) (string, *certs.Credential) {
	t.Helper()
	home := t.TempDir()
	r := runCLI(t, "", "init", "--home", home)
	require.Equal(t, exitOK, r.code, r.stderr)
	cred, err := certs.Load(home)
	require.NoError(t, err)
	return home, cred
}

func TestCLIUsageErrors(t *testing.T) {
	home, _ := initHome(t)
	empty := t.TempDir()
	const addr = "/ip4/127.0.0.1/udp/0/quic-v1"
	cases := []struct {
		args []string
		want string
	}{
		// want is in stderr; home is an initialised identity, empty an empty directory.
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"init", "--home", empty, "extra"}, `unexpected argument "extra"`},
		{[]string{"init", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"id", "--home", home, "--json", "--hash"}, "exclude each other"},
		{[]string{"listen", "--home", home, "--trust-any"}, "missing --addr"},
		{[]string{"listen", "--home", home, "--addr", "127.0.0.1:4001", "--trust-any"}, "not a multiaddr"},
		{[]string{"listen", "--home", home, "--addr", addr}, "no trusted peers: pass --trust ID or --trust-any"},
		{[]string{"listen", "--home", home, "--addr", addr, "--trust", "bob"}, `invalid value "bob" for flag -trust`},
		{[]string{"listen", "--home", home, "--addr", addr, "--trust-any", "--alpn", ""}, `invalid --alpn ""`},
		{[]string{"listen", "--home", home, "--addr", "/ip4/127.0.0.1/tcp/4001", "--trust-any"}, "--addr: unsupported address"},
		{[]string{"listen", "--home", home, "--addr", addr, "--trust-any", "surplus"}, `unexpected argument "surplus"`},
		{[]string{"send", "--home", home, "--trust-any", "hi"}, "missing --to"},
		{[]string{"send", "--home", home, "--to", addr, "hi"}, "no trusted peers"},
		{[]string{"send", "--home", home, "--to", addr, "--trust-any", "--timeout", "0s", "hi"}, "--timeout must be positive"},
		{[]string{"send", "--home", home, "--to", addr, "--trust-any", "--timeout", "soon", "hi"}, `invalid value "soon" for flag -timeout`},
		{[]string{"send", "--home", home, "--to", "/dns4/example.com/tcp/1", "--trust-any", "hi"}, "--to: unsupported address"},
		{[]string{"demo", "now"}, `unexpected argument "now"`},
		{[]string{"version", "--short"}, "flag provided but not defined"},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
	}
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		name = strings.NewReplacer(home, "HOME", empty, "EMPTY").Replace(name)
		if name == "" {
			name = "no arguments"
		}
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "", c.args...)
			require.Equal(t, exitUsage, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stderr, c.want)
			require.Empty(t, r.stdout)
		})
	}
}

func TestCLIRuntimeErrors(t *testing.T) {
	empty := t.TempDir()
	r := runCLI(t, "", "id", "--home", empty)
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "no identity in "+empty+": create one with 'peer init --home "+empty+"'")

	r = runCLI(t, "", "listen", "--home", empty, "--addr", "/ip4/127.0.0.1/udp/0/quic-v1", "--trust-any")
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "no identity in")

	// A group-readable key is refused by certs.Load, and the message says how to fix it.
	home, _ := initHome(t)
	require.NoError(t, os.Chmod(filepath.Join(home, certs.IdentityKeyFile), 0o640))
	r = runCLI(t, "", "id", "--home", home)
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "chmod 600")
}

func TestCLIHelpListsEveryFlag(t *testing.T) {
	r := runCLI(t, "", "help")
	require.Equal(t, exitOK, r.code)
	for _, c := range commands {
		require.Contains(t, r.stdout, "  "+c.name+" ")
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			r := runCLI(t, "", args...)
			require.Equal(t, exitOK, r.code, args)
			require.Contains(t, r.stdout, "Usage: peer "+c.name)
			fs := newFlagSet(c)
			c.setup(fs)
			fs.VisitAll(func(f *flag.Flag) {
				require.Contains(t, r.stdout, "--"+f.Name, "%v: flag %s", args, f.Name)
				require.Contains(t, c.args, "--"+f.Name, "synopsis of %s lacks flag %s", c.name, f.Name)
			})
		}
	}
	r = runCLI(t, "", "--help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stdout, "Commands:")
}

func TestCLIVersion(t *testing.T) {
	r := runCLI(t, "", "version")
	require.Equal(t, exitOK, r.code)
	require.Regexp(t, `^peer \S+.* \(go1\.\d+`, r.stdout)
}

func TestCLIInitAndID(t *testing.T) {
	home := filepath.Join(t.TempDir(), "node")
	r := runCLI(t, "", "init", "--home", home)
	require.Equal(t, exitOK, r.code, r.stderr)
	cred, err := certs.Load(home)
	require.NoError(t, err)
	require.Contains(t, r.stdout, "cert-hash: "+cred.Hash().String()+"\n")
	require.Contains(t, r.stdout, "peer-id: "+cred.PeerID().String()+"\n")

	r = runCLI(t, "", "init", "--home", home)
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "already holds an identity; pass --force")
	again, err := certs.Load(home)
	require.NoError(t, err)
	require.True(t, again.Hash().Equal(cred.Hash()), "the refused init must leave the identity alone")

	r = runCLI(t, "", "id", "--home", home, "--hash")
	require.Equal(t, exitOK, r.code)
	require.Equal(t, cred.Hash().String()+"\n", r.stdout)
	r = runCLI(t, "", "id", "--home", home, "--peer-id")
	require.Equal(t, exitOK, r.code)
	require.Equal(t, cred.PeerID().String()+"\n", r.stdout)

	r = runCLI(t, "", "id", "--home", home, "--json")
	require.Equal(t, exitOK, r.code)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, map[string]any{
		"cert_hash":     cred.Hash().String(),
		"peer_id":       cred.PeerID().String(),
		"identity_keys": []any{cred.IdentityKeys()[0].String()},
	}, out)

	// PEER_HOME is the default home.
	t.Setenv("PEER_HOME", home)
	r = runCLI(t, "", "id", "--hash")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, cred.Hash().String()+"\n", r.stdout)

	r = runCLI(t, "", "init", "--force")
	require.Equal(t, exitOK, r.code, r.stderr)
	renewed, err := certs.Load(home)
	require.NoError(t, err)
	require.False(t, renewed.Hash().Equal(cred.Hash()))
	require.False(t, renewed.PeerID().Equal(cred.PeerID()), "--force creates a new identity key")
}

// startListen runs "peer listen" in process and returns its address, its outputs and a
// function that stops it and returns its exit code.
func startListen(t *testing.T, args ...string) (addr string, stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"listen"}, args...), nil, stdout, stderr) }()
	stop = sync.OnceValue(func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Error("listen did not stop")
			return -1
		}
	})
	t.Cleanup(func() { stop() })
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "\n") }, 10*time.Second, 5*time.Millisecond, "no address; stderr: %s", stderr)
	first, _, _ := strings.Cut(stdout.String(), "\n")
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, first)
	require.NotContains(t, addr, "/udp/0/")
	return addr, stdout, stderr, stop
}

func TestCLIListenAndSend(t *testing.T) {
	homeA, credA := initHome(t)
	homeB, credB := initHome(t)
	homeC, credC := initHome(t)
	addr, stdout, stderr, stop := startListen(t, "--home", homeA, "--addr", "/ip4/127.0.0.1/udp/0/quic-v1", "--trust", credB.Hash().String())

	r := runCLI(t, "", "send", "--home", homeB, "--to", addr, "--trust", credA.PeerID().String(), "hello", "two words", "tab\there", "")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, "from\nstdin\r\n\nlast line without newline", "send", "--home", homeB, "--to", addr, "--trust", credA.Hash().String())
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, "", "send", "--home", homeB, "--to", addr, "--trust-any", "--", "-dash", "bell\a", "\xff")
	require.Equal(t, exitOK, r.code, r.stderr)

	// The peer refuses C's certificate.
	r = runCLI(t, "", "send", "--home", homeC, "--to", addr, "--trust-any", "intruder")
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "my certificate was rejected by peer")
	require.Contains(t, r.stderr, credC.Hash().Short())
	// B refuses A's certificate.
	r = runCLI(t, "", "send", "--home", homeB, "--to", addr, "--trust", credC.Hash().String(), "never")
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "certificate rejected: certificate hash not trusted")
	require.Contains(t, r.stderr, credA.Hash().Short())

	require.Equal(t, exitOK, stop())
	b := credB.Hash().String()
	want := []string{
		"listening on " + addr,
		b + " hello", b + " two words", b + " tab\there", b + " ",
		b + " from", b + " stdin", b + " ", b + " last line without newline",
		b + " -dash", b + ` "bell\a"`, b + ` "\xff"`,
	}
	require.Equal(t, strings.Join(want, "\n")+"\n", stdout.String())
	log := stderr.String()
	require.Contains(t, log, "rejected connection from 127.0.0.1:")
	require.Contains(t, log, "certificate rejected: certificate hash not trusted: presented "+credC.Hash().Short())
	require.Contains(t, log, "closed by peer after 4 messages")
}

// gate is a writer that lets the first write through and blocks the others until opened.
type gate struct {
	syncBuffer
	once   sync.Once
	passed chan struct{}
	open   chan struct{}
}

func (g *gate) Write(p []byte) (int, error) {
	first := false
	g.once.Do(func() { first = true })
	if !first {
		g.passed <- struct{}{}
		<-g.open
	}
	return g.syncBuffer.Write(p)
}

// Messages that arrived before listen was stopped are printed, even if printing lagged.
func TestCLIListenPrintsWhatArrivedBeforeStop(t *testing.T) {
	homeA, _ := initHome(t)
	_, credB := initHome(t)
	stdout := &gate{passed: make(chan struct{}, 16), open: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--home", homeA, "--addr", "/ip4/127.0.0.1/udp/0/quic-v1", "--trust-any"}, nil, stdout, io.Discard)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "\n") }, 10*time.Second, 5*time.Millisecond)
	addr := strings.TrimSpace(strings.TrimPrefix(stdout.String(), "listening on "))

	tr, err := nettransport.New(nettransport.Config{Logger: quietLogger})
	require.NoError(t, err)
	defer tr.Close()
	cred := &nettransport.Credential{Certificate: credB}
	cred.Trust.AnyAuthenticated = true
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	conn, err := tr.Dial(dctx, ma.StringCast(addr), []string{defaultALPN}, cred)
	require.NoError(t, err)
	for i := range 5 {
		require.NoError(t, conn.Send(dctx, fmt.Appendf(nil, "m%d", i)))
	}
	require.NoError(t, conn.Close(), "the listener's transport takes delivery while printing is blocked")
	<-stdout.passed // the first message is being printed, the rest wait in the listener

	cancel()
	select {
	case <-done:
		t.Fatal("listen returned while still printing")
	case <-time.After(50 * time.Millisecond):
	}
	close(stdout.open)
	select {
	case code := <-done:
		require.Equal(t, exitOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not stop")
	}
	b := credB.Hash().String()
	require.Equal(t, "listening on "+addr+"\n"+b+" m0\n"+b+" m1\n"+b+" m2\n"+b+" m3\n"+b+" m4\n", stdout.String())
}

// A peer that does not read what it is sent: send must not claim delivery.
func TestCLISendWaitsForDelivery(t *testing.T) {
	homeB, credB := initHome(t)
	_, credA := initHome(t)
	// With a receive queue of one message and nobody calling Recv, the peer's transport
	// stops reading after the second message. (Small messages would not do: the peer reads
	// a short stream to its end in one go, and holding them all counts as taking delivery.)
	tr, err := nettransport.New(nettransport.Config{Logger: quietLogger, ReceiveQueue: 1})
	require.NoError(t, err)
	defer tr.Close()
	cred := &nettransport.Credential{Certificate: credA}
	require.NoError(t, cred.Trust.Add(credB.Hash().String()))
	ln, err := tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), []string{defaultALPN}, cred)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns := make(chan nettransport.Connection, 1)
	go func() {
		defer close(conns)
		req, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		if conn, err := req.Accept(ctx); err == nil {
			conns <- conn
		}
	}()

	start := time.Now()
	big := strings.Repeat("x", 128<<10)
	r := runCLI(t, "", "send", "--home", homeB, "--to", ln.Addr().String(), "--trust-any", "--timeout", "300ms", big, big, big)
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "the peer did not take delivery of all 3 messages within 300ms")
	require.Less(t, time.Since(start), 5*time.Second)

	conn := <-conns
	require.NotNil(t, conn)
	<-conn.Done()
}

func TestCLISendNobodyListening(t *testing.T) {
	home, _ := initHome(t)
	r := runCLI(t, "", "send", "--home", home, "--to", "/ip4/127.0.0.1/udp/9/quic-v1", "--trust-any", "--timeout", "300ms", "hi")
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "no answer within 300ms")
}

func TestCLIDemo(t *testing.T) {
	r := runCLI(t, "", "demo")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, r.stderr)
	for _, want := range []string{
		"Nodes\n", "Connections", "Messages", "Timings", "Rejection", "Done in",
		"alpn peerwire/1", "alpn peerwire/2", `"hello bob, this is alice"`,
		"1000 × 64 B messages", "1 MiB message",
		"my certificate was rejected by peer", "certificate rejected: certificate hash not trusted",
	} {
		require.Contains(t, r.stdout, want)
	}
}

func TestCLIPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"tab\tok":    "tab\tok",
		"":           "",
		"héllo ✓":    "héllo ✓",
		"two\nlines": `"two\nlines"`,
		"cr\r":       `"cr\r"`,
		"\xff\xfe":   `"\xff\xfe"`,
		"esc\x1b[0m": `"esc\x1b[0m"`,
	} {
		require.Equal(t, want, printable([]byte(in)), "%q", in)
	}
}
