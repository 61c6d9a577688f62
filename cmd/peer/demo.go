package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/nettransport"
)

var demoCommand = &command{
	name:    "demo",
	args:    "",
	summary: "run three nodes on loopback and show what peerwire does",
	details: `Runs three nodes in this process on 127.0.0.1 (each listening on QUIC and on QMux, free
ports), each with a fresh identity and trusting the other two by certificate hash. It
connects them in a ring (one link over QMux, the others over QUIC), exchanges
messages with timings (dial, round trip, a burst of small messages, a 1 MiB message), and
shows what happens when a fourth node that nobody trusts tries to connect: the error each
side gets. Nothing is written to disk.`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		return func(ctx context.Context, std stdio, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return runDemo(ctx, std.stdout)
		}
	},
}

// The demo's workload.
const (
	demoPings      = 100
	demoBurst      = 1000
	demoBurstSize  = 64
	demoLargeSize  = 1 << 20
	demoTimeLimit  = 30 * time.Second
	demoRejectWait = 5 * time.Second
)

// Dialers offer both protocols; only carol's listener speaks peerwire/2, so the negotiated
// protocol differs by connection.
var (
	demoOffer   = []string{"peerwire/2", defaultALPN}
	demoListen  = []string{defaultALPN}
	demoListen2 = []string{"peerwire/2", defaultALPN}
)

type demoNode struct {
	name string
	cred *nettransport.Credential
	alpn []string // the protocols its listener speaks
	tr   nettransport.Transport
	lns  map[nettransport.Core]nettransport.Listener
}

// demo is one run of the demonstration: its nodes and the goroutines it started.
type demo struct {
	ctx   context.Context
	w     io.Writer
	nodes []*demoNode
	wg    sync.WaitGroup
}

func runDemo(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, demoTimeLimit)
	defer cancel()
	start := time.Now()
	d := &demo{ctx: ctx, w: w}
	defer d.close()

	fmt.Fprintln(w, "peerwire demo: three nodes on loopback over QUIC and QMux, trusting each other by certificate hash")

	alice, err := d.node("alice", demoListen)
	if err != nil {
		return err
	}
	bob, err := d.node("bob", demoListen)
	if err != nil {
		return err
	}
	carol, err := d.node("carol", demoListen2)
	if err != nil {
		return err
	}
	ring := []*demoNode{alice, bob, carol}
	for _, n := range ring {
		for _, o := range ring {
			if o != n {
				n.cred.Trust.Hashes = append(n.cred.Trust.Hashes, o.cred.Certificate.Hash())
			}
		}
	}
	for _, n := range ring {
		if err := d.listen(n); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nNodes")
	for _, n := range ring {
		fmt.Fprintf(w, "  %-6s cert %s…  peer %s  %s  %s\n", n.name, n.cred.Certificate.Hash().Short(), n.cred.Certificate.PeerID(),
			n.lns[nettransport.QUIC].Addr(), n.lns[nettransport.QMux].Addr())
	}

	fmt.Fprintf(w, "\nConnections (mutual TLS 1.3; dialers offer %s)\n", strings.Join(demoOffer, ", "))
	type link struct {
		from, to *demoNode
		out, in  nettransport.Connection // the dialer's and the listener's end
	}
	var links []link
	for i, from := range ring {
		to := ring[(i+1)%len(ring)]
		core := nettransport.QUIC
		if i == 1 {
			core = nettransport.QMux // same API, TLS 1.3 over TCP
		}
		out, in, took, err := d.connect(from, to, core)
		if err != nil {
			return fmt.Errorf("%s → %s: %w", from.name, to.name, err)
		}
		// Each side knows exactly whom it is talking to.
		if !out.RemoteIdentity().Equal(to.cred.Certificate.Hash()) || !in.RemoteIdentity().Equal(from.cred.Certificate.Hash()) {
			return fmt.Errorf("%s → %s: unexpected remote identities", from.name, to.name)
		}
		links = append(links, link{from, to, out, in})
		fmt.Fprintf(w, "  %-14s %-4s  alpn %-11s dial %9s   %s sees %s…, %s sees %s…\n",
			from.name+" → "+to.name, out.Core(), out.ALPN(), fmtDuration(took),
			from.name, out.RemoteIdentity().Short(), to.name, in.RemoteIdentity().Short())
	}

	fmt.Fprintln(w, "\nMessages (the receiver names the sender by its certificate hash)")
	for _, l := range links {
		text := fmt.Sprintf("hello %s, this is %s", l.to.name, l.from.name)
		if err := l.out.Send(ctx, []byte(text)); err != nil {
			return err
		}
		msg, _, err := l.in.Recv(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-14s %-30q from %s…\n", l.from.name+" → "+l.to.name, msg, l.in.RemoteIdentity().Short())
	}

	fmt.Fprintln(w, "\nTimings")
	ab, bc, ca := links[0], links[1], links[2]
	avg, low, err := d.pingPong(ab.out, ab.in)
	if err != nil {
		return fmt.Errorf("round trips: %w", err)
	}
	fmt.Fprintf(w, "  %-14s %-22s avg %9s   min %s\n", "alice ⇄ bob", fmt.Sprintf("%d round trips", demoPings), fmtDuration(avg), fmtDuration(low))
	took, err := d.burst(bc.out, bc.in)
	if err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	fmt.Fprintf(w, "  %-14s %-22s in  %9s   %s msg/s\n", "bob → carol", fmt.Sprintf("%d × %d B messages", demoBurst, demoBurstSize), fmtDuration(took), fmtCount(float64(demoBurst)/took.Seconds()))
	took, err = d.large(ca.out, ca.in)
	if err != nil {
		return fmt.Errorf("large message: %w", err)
	}
	fmt.Fprintf(w, "  %-14s %-22s in  %9s   %.0f MiB/s\n", "carol → alice", "1 MiB message", fmtDuration(took), float64(demoLargeSize)/(1<<20)/took.Seconds())

	if err := d.rejection(alice); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDone in %s. Next: peer init, peer listen, peer send (peer help explains each).\n", fmtDuration(time.Since(start)))
	return nil
}

// node creates a node with a fresh identity and a transport.
func (d *demo) node(name string, alpn []string) (*demoNode, error) {
	key, err := identity.GenerateKey()
	if err != nil {
		return nil, err
	}
	cert, err := certs.NewCredential(key, certs.Options{})
	if err != nil {
		return nil, err
	}
	tr, err := nettransport.New(nettransport.Config{Logger: quietLogger})
	if err != nil {
		return nil, err
	}
	n := &demoNode{name: name, cred: &nettransport.Credential{Certificate: cert}, alpn: alpn, tr: tr}
	d.nodes = append(d.nodes, n)
	return n, nil
}

var demoAddrs = map[nettransport.Core]ma.Multiaddr{
	nettransport.QUIC: ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
	nettransport.QMux: ma.StringCast("/ip4/127.0.0.1/tcp/0/qmux"),
}

func (d *demo) listen(n *demoNode) error {
	n.lns = make(map[nettransport.Core]nettransport.Listener)
	for core, addr := range demoAddrs {
		ln, err := n.tr.Listen(addr, n.alpn, n.cred)
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		n.lns[core] = ln
	}
	return nil
}

// close ends every node and waits for the demo's goroutines.
func (d *demo) close() {
	for _, n := range d.nodes {
		_ = n.tr.Close()
	}
	d.wg.Wait()
}

type accepted struct {
	conn nettransport.Connection
	err  error
}

// acceptOne accepts the next connection attempt on n's listener.
func (d *demo) acceptOne(ctx context.Context, n *demoNode, core nettransport.Core) <-chan accepted {
	ch := make(chan accepted, 1)
	d.wg.Go(func() {
		req, err := n.lns[core].Accept(ctx)
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		c, err := req.Accept(ctx)
		ch <- accepted{c, err}
	})
	return ch
}

// connect dials from → to over core and returns both ends and the dial time.
func (d *demo) connect(from, to *demoNode, core nettransport.Core) (out, in nettransport.Connection, took time.Duration, err error) {
	actx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	ch := d.acceptOne(actx, to, core)
	start := time.Now()
	out, err = from.tr.Dial(d.ctx, to.lns[core].Addr(), demoOffer, from.cred)
	took = time.Since(start)
	if err != nil {
		return nil, nil, 0, err
	}
	a := <-ch
	if a.err != nil {
		return nil, nil, 0, a.err
	}
	return out, a.conn, took, nil
}

// pingPong measures round trips: in echoes every message back.
func (d *demo) pingPong(out, in nettransport.Connection) (avg, low time.Duration, err error) {
	echoErr := make(chan error, 1)
	d.wg.Go(func() {
		for range demoPings {
			m, _, err := in.Recv(d.ctx)
			if err == nil {
				err = in.Send(d.ctx, m)
			}
			if err != nil {
				echoErr <- err
				return
			}
		}
		echoErr <- nil
	})
	var total time.Duration
	low = time.Hour
	for i := range demoPings {
		start := time.Now()
		if err := out.Send(d.ctx, fmt.Appendf(nil, "ping %d", i)); err != nil {
			return 0, 0, err
		}
		if _, _, err := out.Recv(d.ctx); err != nil {
			return 0, 0, err
		}
		rtt := time.Since(start)
		total += rtt
		low = min(low, rtt)
	}
	if err := <-echoErr; err != nil {
		return 0, 0, err
	}
	return total / demoPings, low, nil
}

// burst sends many small messages and returns the time until the last one arrived.
func (d *demo) burst(out, in nettransport.Connection) (time.Duration, error) {
	sendErr := make(chan error, 1)
	start := time.Now()
	d.wg.Go(func() {
		msg := bytes.Repeat([]byte{'x'}, demoBurstSize)
		for range demoBurst {
			if err := out.Send(d.ctx, msg); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	})
	for i := range demoBurst {
		m, _, err := in.Recv(d.ctx)
		if err != nil {
			return 0, err
		}
		if len(m) != demoBurstSize {
			return 0, fmt.Errorf("message %d has %d bytes, want %d", i, len(m), demoBurstSize)
		}
	}
	took := time.Since(start)
	return took, <-sendErr
}

// large sends one 1 MiB message and returns the time until it arrived intact.
func (d *demo) large(out, in nettransport.Connection) (time.Duration, error) {
	msg := make([]byte, demoLargeSize)
	_, _ = rand.Read(msg)
	sendErr := make(chan error, 1)
	start := time.Now()
	d.wg.Go(func() { sendErr <- out.Send(d.ctx, msg) })
	got, _, err := in.Recv(d.ctx)
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	if err := <-sendErr; err != nil {
		return 0, err
	}
	if !bytes.Equal(got, msg) {
		return 0, errors.New("the message arrived corrupted")
	}
	return took, nil
}

// rejection has a node that nobody trusts dial target, and shows both sides' errors.
func (d *demo) rejection(target *demoNode) error {
	mallory, err := d.node("mallory", demoListen)
	if err != nil {
		return err
	}
	// Mallory trusts the target, so the refusal is the target's.
	mallory.cred.Trust.Hashes = []identity.CertHash{target.cred.Certificate.Hash()}
	fmt.Fprintf(d.w, "\nRejection (mallory, cert %s…, has a valid certificate that nobody trusts)\n", mallory.cred.Certificate.Hash().Short())

	actx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	ch := d.acceptOne(actx, target, nettransport.QUIC)
	start := time.Now()
	conn, dialErr := mallory.tr.Dial(d.ctx, target.lns[nettransport.QUIC].Addr(), demoOffer, mallory.cred)
	took := time.Since(start)
	if dialErr == nil {
		_ = conn.Close()
		return fmt.Errorf("mallory was accepted by %s", target.name)
	}
	var acceptErr error
	select {
	case a := <-ch:
		acceptErr = a.err
		if a.conn != nil {
			_ = a.conn.Close()
		}
	case <-time.After(demoRejectWait):
		return fmt.Errorf("%s saw no connection attempt from mallory", target.name)
	}
	var byPeer *certs.RejectedByPeerError
	var refused *certs.RejectError
	if !errors.As(dialErr, &byPeer) || !errors.As(acceptErr, &refused) {
		return fmt.Errorf("unexpected errors: mallory: %v; %s: %v", dialErr, target.name, acceptErr)
	}
	fmt.Fprintf(d.w, "  mallory → %s refused in %s; each side gets a typed error naming the certificate:\n", target.name, fmtDuration(took))
	fmt.Fprintf(d.w, "  %-7s (dialer, %T):\n      %v\n", "mallory", byPeer, dialErr)
	fmt.Fprintf(d.w, "  %-7s (listener, %T):\n      %v\n", target.name, refused, acceptErr)
	return nil
}

// fmtDuration prints d with three significant digits in ms or s.
func fmtDuration(d time.Duration) string {
	switch ms := float64(d) / float64(time.Millisecond); {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f s", ms/1000)
	}
}

// fmtCount prints a rate rounded to an integer with thousands separators.
func fmtCount(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
