package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// refServerName is the name in every reference certificate, which clients verify.
const refServerName = "peerwire-bench"

// refPKI is the certificate authority of the TLS references (raw quic-go and TLS over TCP).
// Every node gets its own ECDSA P-256 certificate (the key type of peerwire's certificates),
// and every handshake verifies the peer's chain in both directions: the server requires and
// verifies the client's certificate, the client verifies the server's chain and name. That is
// a mutual-TLS deployment, so the handshake comparison with peerwire (which checks both
// certificates against its trust policy) is fair.
type refPKI struct {
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newRefPKI() (*refPKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "peerwire-bench CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &refPKI{ca: ca, key: key, pool: pool}, nil
}

// configs issues a new node certificate and returns the node's TLS configurations as a
// server and as a client; both present the certificate and verify the peer's.
func (p *refPKI) configs() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: refServerName},
		DNSNames:     []string{refServerName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{alpn},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{alpn},
		RootCAs: p.pool, ServerName: refServerName}
	return server, client, nil
}

// quicGoNode is one quic.Transport (one UDP socket) that listens and dials.
type quicGoNode struct {
	udp    *net.UDPConn
	tr     *quic.Transport
	ln     *quic.Listener
	client *tls.Config
	qc     func() *quic.Config
	mu     sync.Mutex // serialises incoming connects, so the next accepted connection is the caller's
}

// quicGoConfig is the raw quic-go reference's quic.Config: quic-go's defaults.
func quicGoConfig() *quic.Config { return &quic.Config{} }

func quicGoNodes() func(context.Context, int) ([]Node, error) {
	return func(_ context.Context, n int) ([]Node, error) { return startQUICGoNodes(n, quicGoConfig) }
}

func startQUICGoNodes(n int, qc func() *quic.Config) ([]Node, error) {
	pki, err := newRefPKI()
	if err != nil {
		return nil, err
	}
	return startNodes(n, func(int) (*quicGoNode, error) {
		stc, ctc, err := pki.configs()
		if err != nil {
			return nil, err
		}
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		tr := &quic.Transport{Conn: udp}
		ln, err := tr.Listen(stc, qc())
		if err != nil {
			tr.Close()
			udp.Close()
			return nil, err
		}
		return &quicGoNode{udp: udp, tr: tr, ln: ln, client: ctc, qc: qc}, nil
	})
}

func (n *quicGoNode) Close() error {
	return errors.Join(n.ln.Close(), n.tr.Close(), n.udp.Close())
}

func (n *quicGoNode) listenAddr() (net.Addr, error) { return n.udp.LocalAddr(), nil }

// Connect relies on quic-go completing handshakes before Accept is called (it queues them),
// so it dials, opens the stream and only then accepts.
func (n *quicGoNode) Connect(ctx context.Context, peer Node) (*Pair, error) {
	return n.connectVia(ctx, peer, peer.(*quicGoNode).udp.LocalAddr(), nil)
}

// connectVia sends first, if any, right after the empty message that opens the stream.
func (n *quicGoNode) connectVia(ctx context.Context, peer Node, via net.Addr, first []byte) (*Pair, error) {
	to := peer.(*quicGoNode)
	to.mu.Lock()
	defer to.mu.Unlock()
	cc, err := n.tr.Dial(ctx, via, n.client, n.qc())
	if err != nil {
		return nil, err
	}
	var sc *quic.Conn
	fail := func(err error) (*Pair, error) {
		cc.CloseWithError(0, "")
		if sc != nil {
			sc.CloseWithError(0, "")
		}
		return nil, err
	}
	cs, err := cc.OpenStreamSync(ctx)
	if err != nil {
		return fail(err)
	}
	if _, err := cs.Write(emptyMessage); err != nil {
		return fail(err)
	}
	if first != nil {
		if err := newStreamEndpoint(cs).Send(ctx, first); err != nil {
			return fail(err)
		}
	}
	if sc, err = to.ln.Accept(ctx); err != nil {
		return fail(err)
	}
	ss, err := sc.AcceptStream(ctx)
	if err != nil {
		return fail(err)
	}
	if err := readEmpty(ss); err != nil {
		return fail(err)
	}
	return &Pair{Client: newStreamEndpoint(cs), Server: newStreamEndpoint(ss), Close: func() {
		cc.CloseWithError(0, "")
		sc.CloseWithError(0, "")
	}}, nil
}

func quicGoDialer() func(context.Context) (func(context.Context) error, func(), error) {
	return func(context.Context) (func(context.Context) error, func(), error) {
		return startQUICGoDialer(quicGoConfig)
	}
}

func startQUICGoDialer(qc func() *quic.Config) (func(context.Context) error, func(), error) {
	pki, err := newRefPKI()
	if err != nil {
		return nil, nil, err
	}
	stc, _, err := pki.configs()
	if err != nil {
		return nil, nil, err
	}
	_, ctc, err := pki.configs()
	if err != nil {
		return nil, nil, err
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", stc, qc())
	if err != nil {
		return nil, nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	tr := &quic.Transport{Conn: udp}
	acc := newAccepts()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			// The listener returns a connection once its handshake completed.
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			acc.done(nil)
			wg.Go(func() { <-c.Context().Done() })
		}
	})
	dial := func(ctx context.Context) error {
		c, err := tr.Dial(ctx, ln.Addr(), ctc, qc())
		if err != nil {
			return err
		}
		return errors.Join(acc.wait(ctx), c.CloseWithError(0, ""))
	}
	return dial, func() { tr.Close(); udp.Close(); ln.Close(); wg.Wait() }, nil
}

// tcpNode is a TCP listener; with TLS, both directions of every connection run a TLS 1.3
// handshake that verifies the peer (see refPKI).
type tcpNode struct {
	ln             net.Listener
	server, client *tls.Config // nil for plain TCP
	mu             sync.Mutex  // serialises incoming connects, so the next accepted connection is the caller's
}

func tcpNodes(useTLS bool) func(context.Context, int) ([]Node, error) {
	return func(_ context.Context, n int) ([]Node, error) {
		var pki *refPKI
		if useTLS {
			var err error
			if pki, err = newRefPKI(); err != nil {
				return nil, err
			}
		}
		return startNodes(n, func(int) (*tcpNode, error) {
			nd := &tcpNode{}
			if pki != nil {
				var err error
				if nd.server, nd.client, err = pki.configs(); err != nil {
					return nil, err
				}
			}
			var err error
			nd.ln, err = net.Listen("tcp", "127.0.0.1:0")
			return nd, err
		})
	}
}

func (n *tcpNode) Close() error { return n.ln.Close() }

func (n *tcpNode) listenAddr() (net.Addr, error) { return n.ln.Addr(), nil }

// Connect dials first: the kernel completes the TCP handshake before Accept.
func (n *tcpNode) Connect(ctx context.Context, peer Node) (*Pair, error) {
	return n.connectVia(ctx, peer, peer.(*tcpNode).ln.Addr(), nil)
}

// connectVia sends first, if any, right after the client's half of the TLS handshake (or the
// connect, without TLS).
func (n *tcpNode) connectVia(ctx context.Context, peer Node, via net.Addr, first []byte) (*Pair, error) {
	to := peer.(*tcpNode)
	to.mu.Lock()
	defer to.mu.Unlock()
	var d net.Dialer
	cc, err := d.DialContext(ctx, "tcp", via.String())
	if err != nil {
		return nil, err
	}
	if n.client == nil && first != nil {
		if err := newStreamEndpoint(cc).Send(ctx, first); err != nil {
			cc.Close()
			return nil, err
		}
	}
	sc, err := to.ln.Accept()
	if err != nil {
		cc.Close()
		return nil, err
	}
	if n.client != nil {
		var wg sync.WaitGroup
		var serr error
		tc, ts := tls.Client(cc, n.client), tls.Server(sc, to.server)
		wg.Go(func() {
			if serr = ts.HandshakeContext(ctx); serr != nil {
				ts.Close() // fails the client's handshake too
			}
		})
		err = tc.HandshakeContext(ctx)
		if err == nil && first != nil {
			err = newStreamEndpoint(tc).Send(ctx, first)
		}
		if err != nil {
			tc.Close()
		}
		wg.Wait()
		if err = errors.Join(err, serr); err != nil {
			cc.Close()
			sc.Close()
			return nil, err
		}
		cc, sc = tc, ts
	}
	return &Pair{Client: newStreamEndpoint(cc), Server: newStreamEndpoint(sc), Close: func() { cc.Close(); sc.Close() }}, nil
}

// tcpServe accepts connections on loopback, runs wrap on each, reports its outcome to acc
// and then discards what arrives until the peer closes.
func tcpServe(wrap func(net.Conn) error, acc accepts) (string, func(), error) {
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
				err := wrap(c)
				acc.done(err)
				if err == nil {
					_, _ = io.Copy(io.Discard, c)
				}
			})
		}
	})
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }, nil
}

func tcpDialer(useTLS bool) func(context.Context) (func(context.Context) error, func(), error) {
	return func(context.Context) (func(context.Context) error, func(), error) {
		var stc, ctc *tls.Config
		if useTLS {
			pki, err := newRefPKI()
			if err != nil {
				return nil, nil, err
			}
			if stc, _, err = pki.configs(); err != nil {
				return nil, nil, err
			}
			if _, ctc, err = pki.configs(); err != nil {
				return nil, nil, err
			}
		}
		acc := newAccepts()
		addr, cleanup, err := tcpServe(func(c net.Conn) error {
			if stc == nil {
				return nil
			}
			return tls.Server(c, stc).Handshake()
		}, acc)
		if err != nil {
			return nil, nil, err
		}
		var d net.Dialer
		return func(ctx context.Context) error {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			if ctc != nil {
				err = tls.Client(c, ctc).HandshakeContext(ctx)
			}
			if err == nil {
				err = acc.wait(ctx)
			}
			return errors.Join(err, c.Close())
		}, cleanup, nil
	}
}
