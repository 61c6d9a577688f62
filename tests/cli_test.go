package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The peer CLI as real processes: a freshly built binary, real homes, real signals.

const cliWait = 20 * time.Second // bound on any one command or condition

// peerBinary builds cmd/peer into a temporary directory.
func peerBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "peer")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/peerwire/peerwire/cmd/peer").CombinedOutput()
	require.NoError(t, err, "go build ./cmd/peer: %s", out)
	return bin
}

// cliBuffer collects a process's output while the test reads it.
type cliBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *cliBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *cliBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// cliProc is a running peer command.
type cliProc struct {
	t              *testing.T
	args           []string
	cmd            *exec.Cmd
	stdout, stderr *cliBuffer
	exited         chan struct{}
	code           int
}

// startCLI starts the binary; the test's cleanup kills it if it is still running.
func startCLI(t *testing.T, bin string, stdin io.Reader, args ...string) *cliProc {
	t.Helper()
	p := &cliProc{t: t, args: args, cmd: exec.Command(bin, args...), stdout: &cliBuffer{}, stderr: &cliBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait returns the exit code.
func (p *cliProc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(cliWait):
		p.t.Fatalf("peer %s still running after %v\nstdout: %s\nstderr: %s", strings.Join(p.args, " "), cliWait, p.stdout, p.stderr)
		return -1
	}
}

func (p *cliProc) signal(sig os.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// waitOutput waits until the buffer satisfies cond.
func (p *cliProc) waitOutput(b *cliBuffer, what string, cond func(string) bool) {
	p.t.Helper()
	require.Eventually(p.t, func() bool { return cond(b.String()) }, cliWait, 5*time.Millisecond,
		"peer %s: %s\nstdout: %s\nstderr: %s", strings.Join(p.args, " "), what, p.stdout, p.stderr)
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// runPeer runs the binary to completion.
func runPeer(t *testing.T, bin, stdin string, args ...string) cliResult {
	t.Helper()
	p := startCLI(t, bin, strings.NewReader(stdin), args...)
	code := p.wait()
	return cliResult{code, p.stdout.String(), p.stderr.String()}
}

type cliIdentity struct {
	CertHash     string   `json:"cert_hash"`
	PeerID       string   `json:"peer_id"`
	IdentityKeys []string `json:"identity_keys"`
}

// initPeer runs peer init in a new home and returns the home and its identity.
func initPeer(t *testing.T, bin string) (string, cliIdentity) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	r := runPeer(t, bin, "", "init", "--home", home)
	require.Equal(t, 0, r.code, r.stderr)
	r = runPeer(t, bin, "", "id", "--home", home, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var id cliIdentity
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &id))
	return home, id
}

// TestCLI builds the binary once and runs each scenario against it.
func TestCLI(t *testing.T) {
	bin := peerBinary(t)
	t.Run("InitAndID", func(t *testing.T) {
		t.Parallel()
		testCLIInitAndID(t, bin)
	})
	t.Run("ListenAndSend", func(t *testing.T) {
		t.Parallel()
		testCLIListenAndSend(t, bin)
	})
	t.Run("ListenStopsOnSIGTERM", func(t *testing.T) {
		t.Parallel()
		testCLIListenStopsOnSIGTERM(t, bin)
	})
	t.Run("Demo", func(t *testing.T) {
		t.Parallel()
		testCLIDemo(t, bin)
	})
	t.Run("Usage", func(t *testing.T) {
		t.Parallel()
		testCLIUsage(t, bin)
	})
}

func testCLIInitAndID(t *testing.T, bin string) {
	homeA := filepath.Join(t.TempDir(), "a")
	homeB := filepath.Join(t.TempDir(), "b")

	r := runPeer(t, bin, "", "init", "--home", homeA)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `(?m)^cert-hash: [0-9a-f]{64}$`, r.stdout)
	require.Regexp(t, `(?m)^peer-id: 12D3KooW[1-9A-HJ-NP-Za-km-z]+$`, r.stdout)
	for name, mode := range map[string]os.FileMode{"identity.key": 0o600, "tls.key": 0o600, "tls.crt": 0o644} {
		st, err := os.Stat(filepath.Join(homeA, name))
		require.NoError(t, err)
		require.Equal(t, mode, st.Mode().Perm(), name)
	}
	before, err := os.ReadFile(filepath.Join(homeA, "identity.key"))
	require.NoError(t, err)

	// A second init refuses to replace the identity and leaves it alone.
	again := runPeer(t, bin, "", "init", "--home", homeA)
	require.Equal(t, 1, again.code)
	require.Contains(t, again.stderr, "already holds an identity; pass --force")
	after, err := os.ReadFile(filepath.Join(homeA, "identity.key"))
	require.NoError(t, err)
	require.Equal(t, before, after)

	// id --json agrees with what init printed and with --hash / --peer-id.
	r2 := runPeer(t, bin, "", "id", "--home", homeA, "--json")
	require.Equal(t, 0, r2.code, r2.stderr)
	var a cliIdentity
	require.NoError(t, json.Unmarshal([]byte(r2.stdout), &a))
	require.Contains(t, r.stdout, "cert-hash: "+a.CertHash+"\n")
	require.Contains(t, r.stdout, "peer-id: "+a.PeerID+"\n")
	require.Len(t, a.IdentityKeys, 1)
	require.Regexp(t, `^ed25519:[0-9a-f]{64}$`, a.IdentityKeys[0])
	require.Equal(t, a.CertHash+"\n", runPeer(t, bin, "", "id", "--home", homeA, "--hash").stdout)
	require.Equal(t, a.PeerID+"\n", runPeer(t, bin, "", "id", "--home", homeA, "--peer-id").stdout)

	// Two homes, two identities.
	require.Equal(t, 0, runPeer(t, bin, "", "init", "--home", homeB).code)
	b := runPeer(t, bin, "", "id", "--home", homeB, "--hash")
	require.Equal(t, 0, b.code)
	require.NotEqual(t, a.CertHash+"\n", b.stdout)

	// --force replaces it.
	r = runPeer(t, bin, "", "init", "--home", homeA, "--force")
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout, a.CertHash)
}

func testCLIListenAndSend(t *testing.T, bin string) {
	homeA, a := initPeer(t, bin)
	homeB, b := initPeer(t, bin)
	homeC, c := initPeer(t, bin)

	ln := startCLI(t, bin, nil, "listen", "--home", homeA, "--addr", "/ip4/127.0.0.1/udp/0/quic-v1", "--trust", b.CertHash)
	ln.waitOutput(ln.stdout, "no address line", func(s string) bool { return strings.Contains(s, "\n") })
	first, _, _ := strings.Cut(ln.stdout.String(), "\n")
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, first)
	require.Regexp(t, `^/ip4/127\.0\.0\.1/udp/[1-9][0-9]*/quic-v1$`, addr)

	// closed waits until the listener has printed every message of n connections.
	closed := func(n int) {
		ln.waitOutput(ln.stderr, "connection not closed", func(s string) bool {
			return strings.Count(s, "closed by peer after") == n
		})
	}
	r := runPeer(t, bin, "", "send", "--home", homeB, "--to", addr, "--trust", a.PeerID, "hello", "two words")
	require.Equal(t, 0, r.code, r.stderr)
	closed(1)
	r = runPeer(t, bin, "first line\nsecond line\n", "send", "--home", homeB, "--to", addr, "--trust", a.CertHash)
	require.Equal(t, 0, r.code, r.stderr)
	closed(2)
	require.Contains(t, ln.stderr.String(), "closed by peer after 2 messages")

	// The listener does not trust C: C's send fails and both sides say why.
	r = runPeer(t, bin, "", "send", "--home", homeC, "--to", addr, "--trust-any", "let me in")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "my certificate was rejected by peer")
	require.Contains(t, r.stderr, c.CertHash[:8])
	ln.waitOutput(ln.stderr, "no rejection logged", func(s string) bool {
		return strings.Contains(s, "rejected connection from 127.0.0.1:") &&
			strings.Contains(s, "certificate rejected: certificate hash not trusted: presented "+c.CertHash[:8])
	})

	// B does not trust the listener: B refuses it.
	r = runPeer(t, bin, "", "send", "--home", homeB, "--to", addr, "--trust", c.CertHash, "never sent")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "certificate rejected: certificate hash not trusted: presented "+a.CertHash[:8])

	ln.signal(syscall.SIGINT)
	require.Equal(t, 0, ln.wait(), ln.stderr.String())
	want := "listening on " + addr + "\n" +
		b.CertHash + " hello\n" +
		b.CertHash + " two words\n" +
		b.CertHash + " first line\n" +
		b.CertHash + " second line\n"
	require.Equal(t, want, ln.stdout.String())
	require.NotContains(t, ln.stdout.String(), "let me in")
}

func testCLIListenStopsOnSIGTERM(t *testing.T, bin string) {
	home, _ := initPeer(t, bin)
	ln := startCLI(t, bin, nil, "listen", "--home", home, "--addr", "/ip4/127.0.0.1/udp/0/quic-v1", "--trust-any")
	ln.waitOutput(ln.stdout, "no address line", func(s string) bool { return strings.HasPrefix(s, "listening on ") })
	ln.signal(syscall.SIGTERM)
	require.Equal(t, 0, ln.wait())
}

func testCLIDemo(t *testing.T, bin string) {
	start := time.Now()
	r := runPeer(t, bin, "", "demo")
	require.Equal(t, 0, r.code, r.stderr)
	require.Less(t, time.Since(start), 10*time.Second)
	require.Empty(t, r.stderr)
	for _, want := range []string{
		"\nNodes\n", "\nConnections", "\nMessages", "\nTimings", "\nRejection", "\nDone in ",
		"alice", "bob", "carol", "mallory", "alpn peerwire/", "dial", "round trips", "msg/s", "MiB/s",
		"my certificate was rejected by peer", "certificate rejected: certificate hash not trusted",
	} {
		require.Contains(t, r.stdout, want)
	}
	require.Regexp(t, `(?m)^  alice +cert [0-9a-f]{8}…  peer 12D3KooW\S+  /ip4/127\.0\.0\.1/udp/\d+/quic-v1  /ip4/127\.0\.0\.1/tcp/\d+/qmux$`, r.stdout)
	require.Regexp(t, `(?m)^  bob → carol +qmux  alpn peerwire/2 `, r.stdout, "one link runs over QMux")
	require.Regexp(t, `(?m)^  alice → bob +quic  alpn peerwire/1 `, r.stdout)
}

func testCLIUsage(t *testing.T, bin string) {
	r := runPeer(t, bin, "")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "Usage:")

	r = runPeer(t, bin, "", "listen", "-h")
	require.Equal(t, 0, r.code)
	for _, flag := range []string{"--home DIR", "--addr MULTIADDR", "--trust ID", "--trust-any", "--alpn NAME"} {
		require.Contains(t, r.stdout, flag)
	}
	r = runPeer(t, bin, "", "send", "--help")
	require.Equal(t, 0, r.code)
	for _, flag := range []string{"--home DIR", "--to MULTIADDR", "--trust ID", "--trust-any", "--alpn NAME", "--timeout DURATION"} {
		require.Contains(t, r.stdout, flag)
	}

	home := t.TempDir()
	r = runPeer(t, bin, "", "send", "--home", home, "--to", "/ip4/127.0.0.1/udp/4001/quic-v1", "hi")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "no trusted peers: pass --trust ID or --trust-any")
	r = runPeer(t, bin, "", "id", "--home", home)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no identity in "+home)

	r = runPeer(t, bin, "", "version")
	require.Equal(t, 0, r.code)
	require.True(t, strings.HasPrefix(r.stdout, "peer "), r.stdout)
}
