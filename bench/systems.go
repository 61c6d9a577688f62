// Package bench measures peerwire beside the references it must beat, in one process and
// one run, on loopback: peerwire over QUIC and over QMux (through the public API), raw
// quic-go, crypto/tls 1.3 over TCP and plain TCP (each with one stream and one Write per
// length-prefixed message). Figures are reported as absolute values and as ratios to the
// references measured in the same run, because absolute times drift on shared machines.
//
// The testing.B benchmarks in this package and `peer bench` run the same code.
package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/nettransport"
)

// Endpoint is one side of a connected pair that moves whole messages.
type Endpoint interface {
	Send(ctx context.Context, msg []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

// Pair is a connected client and server.
type Pair struct {
	Client, Server Endpoint
	Close          func()
}

// System is one thing measured: a way to connect a pair, and a way to dial repeatedly.
type System struct {
	Name string
	// Reference names the system this one is compared with ("" for references).
	Reference string
	// Connect returns a connected pair.
	Connect func(ctx context.Context) (*Pair, error)
	// Dialer prepares a listener and returns a function that dials it once (handshake
	// included) and closes the connection; cleanup releases the listener.
	Dialer func(ctx context.Context) (dial func(context.Context) error, cleanup func(), err error)
}

// Systems returns every system, peerwire's first.
func Systems() []System {
	return []System{
		{Name: "peerwire-quic", Reference: "quic-go", Connect: peerwirePair(quicAddr), Dialer: peerwireDialer(quicAddr)},
		{Name: "peerwire-qmux", Reference: "tls-tcp", Connect: peerwirePair(qmuxAddr), Dialer: peerwireDialer(qmuxAddr)},
		{Name: "quic-go", Connect: quicGoPair, Dialer: quicGoDialer},
		{Name: "tls-tcp", Connect: tlsPair, Dialer: tlsDialer},
		{Name: "tcp", Connect: tcpPair, Dialer: tcpDialer},
	}
}

var (
	quicAddr = ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")
	qmuxAddr = ma.StringCast("/ip4/127.0.0.1/tcp/0/qmux")
)

const alpn = "bench"

// credentials returns two certificates that trust each other.
func credentials() (client, server *nettransport.Credential, err error) {
	mk := func() (*certs.Credential, error) {
		k, err := identity.GenerateKey()
		if err != nil {
			return nil, err
		}
		return certs.NewCredential(k, certs.Options{})
	}
	cc, err := mk()
	if err != nil {
		return nil, nil, err
	}
	sc, err := mk()
	if err != nil {
		return nil, nil, err
	}
	client = &nettransport.Credential{Certificate: cc}
	client.Trust.Hashes = []identity.CertHash{sc.Hash()}
	server = &nettransport.Credential{Certificate: sc}
	server.Trust.Hashes = []identity.CertHash{cc.Hash()}
	return client, server, nil
}

type peerwireEndpoint struct{ c nettransport.Connection }

func (e peerwireEndpoint) Send(ctx context.Context, m []byte) error { return e.c.Send(ctx, m) }
func (e peerwireEndpoint) Recv(ctx context.Context) ([]byte, error) {
	m, _, err := e.c.Recv(ctx)
	return m, err
}

func peerwirePair(addr ma.Multiaddr) func(context.Context) (*Pair, error) {
	return func(ctx context.Context) (*Pair, error) {
		cc, sc, err := credentials()
		if err != nil {
			return nil, err
		}
		tr, err := nettransport.New(nettransport.Config{})
		if err != nil {
			return nil, err
		}
		l, err := tr.Listen(addr, []string{alpn}, sc)
		if err != nil {
			tr.Close()
			return nil, err
		}
		type res struct {
			c   nettransport.Connection
			err error
		}
		ch := make(chan res, 1)
		go func() {
			in, err := l.Accept(ctx)
			if err != nil {
				ch <- res{err: err}
				return
			}
			c, err := in.Accept(ctx)
			ch <- res{c, err}
		}()
		client, err := tr.Dial(ctx, l.Addr(), []string{alpn}, cc)
		r := <-ch
		if err == nil {
			err = r.err
		}
		if err != nil {
			tr.Close()
			return nil, err
		}
		return &Pair{Client: peerwireEndpoint{client}, Server: peerwireEndpoint{r.c}, Close: func() { tr.Close() }}, nil
	}
}

func peerwireDialer(addr ma.Multiaddr) func(context.Context) (func(context.Context) error, func(), error) {
	return func(ctx context.Context) (func(context.Context) error, func(), error) {
		cc, sc, err := credentials()
		if err != nil {
			return nil, nil, err
		}
		str, err := nettransport.New(nettransport.Config{})
		if err != nil {
			return nil, nil, err
		}
		ctr, err := nettransport.New(nettransport.Config{})
		if err != nil {
			str.Close()
			return nil, nil, err
		}
		l, err := str.Listen(addr, []string{alpn}, sc)
		if err != nil {
			str.Close()
			ctr.Close()
			return nil, nil, err
		}
		actx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				in, err := l.Accept(actx)
				if err != nil {
					return
				}
				wg.Go(func() {
					if c, err := in.Accept(actx); err == nil {
						<-c.Done()
					}
				})
			}
		})
		dial := func(ctx context.Context) error {
			c, err := ctr.Dial(ctx, l.Addr(), []string{alpn}, cc)
			if err != nil {
				return err
			}
			return c.CloseWithError(0, "")
		}
		cleanup := func() {
			cancel()
			ctr.Close()
			str.Close()
			wg.Wait()
		}
		return dial, cleanup, nil
	}
}

// streamEndpoint frames messages on one byte stream: one Write per message (length and
// payload together), reads through a buffer. It is what a careful user would write by hand.
type streamEndpoint struct {
	w   io.Writer
	r   *bufio.Reader
	buf []byte
}

func newStreamEndpoint(rw io.ReadWriter) *streamEndpoint {
	return &streamEndpoint{w: rw, r: bufio.NewReaderSize(rw, 64<<10)}
}

func (e *streamEndpoint) Send(_ context.Context, m []byte) error {
	e.buf = binary.BigEndian.AppendUint32(e.buf[:0], uint32(len(m)))
	e.buf = append(e.buf, m...)
	_, err := e.w.Write(e.buf)
	return err
}

func (e *streamEndpoint) Recv(context.Context) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(e.r, h[:]); err != nil {
		return nil, err
	}
	m := make([]byte, binary.BigEndian.Uint32(h[:]))
	_, err := io.ReadFull(e.r, m)
	return m, err
}

// selfSigned makes a TLS certificate for the references (their verification is skipped: the
// references measure the data path, not peerwire's checks).
func selfSigned() (tls.Certificate, error) {
	k, err := identity.GenerateKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	c, err := certs.NewCredential(k, certs.Options{})
	if err != nil {
		return tls.Certificate{}, err
	}
	return c.TLSCertificate(), nil
}

func refTLS() (server, client *tls.Config, err error) {
	cert, err := selfSigned()
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{alpn},
		ClientAuth: tls.RequireAnyClientCert}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{alpn},
		InsecureSkipVerify: true} //nolint:gosec // reference measurement on loopback
	return server, client, nil
}

func quicGoPair(ctx context.Context) (*Pair, error) {
	stc, ctc, err := refTLS()
	if err != nil {
		return nil, err
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", stc, &quic.Config{})
	if err != nil {
		return nil, err
	}
	type res struct {
		s   *quic.Stream
		c   *quic.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			ch <- res{err: err}
			return
		}
		s, err := c.AcceptStream(ctx)
		ch <- res{s, c, err}
	}()
	cc, err := quic.DialAddr(ctx, ln.Addr().String(), ctc, &quic.Config{})
	if err != nil {
		ln.Close()
		return nil, err
	}
	cs, err := cc.OpenStreamSync(ctx)
	if err == nil {
		_, err = cs.Write([]byte{0, 0, 0, 0}) // an empty message makes the stream visible
	}
	r := <-ch
	if err == nil {
		err = r.err
	}
	if err != nil {
		cc.CloseWithError(0, "")
		ln.Close()
		return nil, err
	}
	server := newStreamEndpoint(r.s)
	if _, err := server.Recv(ctx); err != nil {
		return nil, err
	}
	return &Pair{Client: newStreamEndpoint(cs), Server: server, Close: func() {
		cc.CloseWithError(0, "")
		r.c.CloseWithError(0, "")
		ln.Close()
	}}, nil
}

func quicGoDialer(ctx context.Context) (func(context.Context) error, func(), error) {
	stc, ctc, err := refTLS()
	if err != nil {
		return nil, nil, err
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", stc, &quic.Config{})
	if err != nil {
		return nil, nil, err
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	tr := &quic.Transport{Conn: udp}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Go(func() { <-c.Context().Done() })
		}
	})
	dial := func(ctx context.Context) error {
		c, err := tr.Dial(ctx, ln.Addr(), ctc, &quic.Config{})
		if err != nil {
			return err
		}
		return c.CloseWithError(0, "")
	}
	return dial, func() { tr.Close(); udp.Close(); ln.Close(); wg.Wait() }, nil
}

func tcpListenerPair(ctx context.Context, wrapServer, wrapClient func(net.Conn) (net.Conn, error)) (*Pair, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c, err = wrapServer(c)
		}
		ch <- res{c, err}
	}()
	var d net.Dialer
	cc, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		cc, err = wrapClient(cc)
	}
	r := <-ch
	if err == nil {
		err = r.err
	}
	if err != nil {
		if cc != nil {
			cc.Close()
		}
		if r.c != nil {
			r.c.Close()
		}
		return nil, err
	}
	return &Pair{Client: newStreamEndpoint(cc), Server: newStreamEndpoint(r.c), Close: func() { cc.Close(); r.c.Close() }}, nil
}

func tcpPair(ctx context.Context) (*Pair, error) {
	id := func(c net.Conn) (net.Conn, error) { return c, nil }
	return tcpListenerPair(ctx, id, id)
}

func tlsPair(ctx context.Context) (*Pair, error) {
	stc, ctc, err := refTLS()
	if err != nil {
		return nil, err
	}
	handshake := func(tc *tls.Conn) (net.Conn, error) { return tc, tc.HandshakeContext(ctx) }
	return tcpListenerPair(ctx,
		func(c net.Conn) (net.Conn, error) { return handshake(tls.Server(c, stc)) },
		func(c net.Conn) (net.Conn, error) { return handshake(tls.Client(c, ctc)) })
}

func tcpServe(wrap func(net.Conn) error) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if wrap(c) == nil {
					_, _ = io.Copy(io.Discard, c)
				}
			})
		}
	})
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }, nil
}

func tcpDialer(context.Context) (func(context.Context) error, func(), error) {
	addr, cleanup, err := tcpServe(func(net.Conn) error { return nil })
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	return func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}, cleanup, nil
}

func tlsDialer(context.Context) (func(context.Context) error, func(), error) {
	stc, ctc, err := refTLS()
	if err != nil {
		return nil, nil, err
	}
	addr, cleanup, err := tcpServe(func(c net.Conn) error { return tls.Server(c, stc).Handshake() })
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	return func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		tc := tls.Client(c, ctc)
		err = tc.HandshakeContext(ctx)
		c.Close()
		return err
	}, cleanup, nil
}
