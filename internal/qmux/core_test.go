package qmux

// Tests of the Core over real loopback TCP and TLS 1.3: the handshake, ALPN, refusals, and
// bulk transfer.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// listen starts a core and a listener on loopback; both close when the test ends.
func listen(t testing.TB, cfg *session.Config) (*Core, session.Listener) {
	t.Helper()
	core := New()
	core.testHooks = &testHooks{}
	t.Cleanup(func() { _ = core.Close() })
	ln, err := core.Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return core, ln
}

// connect dials and accepts one connection; everything closes when the test ends.
func connect(t testing.TB, clientCfg, serverCfg *session.Config) (client, server session.Conn) {
	t.Helper()
	_, client, server = connectCore(t, clientCfg, serverCfg)
	return client, server
}

// connectCore is connect, also returning the core (both ends use it).
func connectCore(t testing.TB, clientCfg, serverCfg *session.Config) (core *Core, client, server session.Conn) {
	t.Helper()
	core, ln := listen(t, serverCfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.CloseWithError(0, "") })
	r := <-accepted
	require.NoError(t, r.err)
	t.Cleanup(func() { _ = r.c.CloseWithError(0, "") })
	return core, client, r.c
}

func TestALPNMapping(t *testing.T) {
	require.Equal(t, "peerwire/1qx-02", ALPN("peerwire/1"))
	require.Equal(t, "peerwire/1", AppALPN("peerwire/1qx-02"))
	for _, app := range []string{"h3", "test", "peerwire/1"} {
		require.Equal(t, app, AppALPN(ALPN(app)))
		require.NotEqual(t, app, ALPN(app), "the QMux ALPN must differ from the QUIC one")
	}
}

func TestNegotiatedALPNReportedWithoutSuffix(t *testing.T) {
	cc, sc := tlsConfigs(t)
	cc.ALPN = []string{"other", "test"}
	client, server := connect(t, cc, sc)
	for _, c := range []session.Conn{client, server} {
		st := c.State()
		require.Equal(t, "qmux", st.Core)
		require.Equal(t, "test", st.ALPN)
		require.Equal(t, "test"+ALPNSuffix, st.TLS.NegotiatedProtocol, "on the wire")
		require.NotNil(t, st.Peer)
	}
}

func TestNoCommonALPN(t *testing.T) {
	cc, sc := tlsConfigs(t)
	cc.ALPN = []string{"other"}
	core, ln := listen(t, sc)
	accepted := make(chan error, 1)
	go func() {
		in, err := ln.Accept(context.Background())
		if err == nil {
			_, err = in.Accept(context.Background())
		}
		accepted <- err
	}()
	_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
	var ae *session.ALPNError
	require.True(t, errors.As(err, &ae), "dialer's error %v", err)
	require.Equal(t, []string{"other"}, ae.Offered)
	err = <-accepted
	require.True(t, errors.As(err, &ae), "listener's error %v", err)
	require.Equal(t, sc.ALPN, ae.Offered)
}

func TestALPNTooLongForQMux(t *testing.T) {
	cc, _ := tlsConfigs(t)
	cc.ALPN = []string{strings.Repeat("a", 255)} // fits TLS, but not with the suffix
	core := New()
	defer core.Close()
	_, err := core.Dial(context.Background(), "127.0.0.1:1", cc)
	require.ErrorContains(t, err, "too long for QMux")
}

func TestDialerRefusedByListenerPolicy(t *testing.T) {
	// With TLS 1.3 the dialer's handshake ends before the listener checked its certificate;
	// Dial waits for the listener's transport parameters, so the refusal comes from Dial.
	cc, sc := tlsConfigs(t)
	sc.Trust = &certs.TrustPolicy{Hashes: []identity.CertHash{credential(t).Hash()}}
	core, ln := listen(t, sc)
	acceptErr := make(chan error, 1)
	go func() {
		in, err := ln.Accept(context.Background())
		if err == nil {
			_, err = in.Accept(context.Background())
		}
		acceptErr <- err
	}()
	_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
	var rp *certs.RejectedByPeerError
	require.True(t, errors.As(err, &rp), "error %v", err)
	var re *certs.RejectError
	require.True(t, errors.As(<-acceptErr, &re))
	require.Equal(t, certs.ReasonHashNotTrusted, re.Reason)
}

func TestDialHandshakeTimeout(t *testing.T) {
	// A TCP server that accepts and never answers.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		_ = tcp.Close()
		<-done
		for _, c := range held {
			_ = c.Close()
		}
	}()

	cc, _ := tlsConfigs(t)
	cc.HandshakeTimeout = 300 * time.Millisecond
	core := New()
	defer core.Close()
	start := time.Now()
	_, err = core.Dial(context.Background(), tcp.Addr().String(), cc)
	elapsed := time.Since(start)
	var te *session.TimeoutError
	require.True(t, errors.As(err, &te), "error %v", err)
	require.Equal(t, &session.TimeoutError{Op: "handshake", After: 300 * time.Millisecond}, te)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	require.Less(t, elapsed, 3*time.Second)
}

func TestDialRejectedWhenListenerNeverAccepts(t *testing.T) {
	cc, sc := tlsConfigs(t)
	sc.HandshakeTimeout = 500 * time.Millisecond // the dialer keeps the default 10 s
	core, ln := listen(t, sc)                    // nobody calls ln.Accept
	start := time.Now()
	_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, session.ErrRejected)
	require.GreaterOrEqual(t, elapsed, sc.HandshakeTimeout)
	require.Less(t, elapsed, sc.HandshakeTimeout+2*time.Second, "refused within the listener's handshake timeout")
}

func TestRejectGivesErrRejectedAtDialer(t *testing.T) {
	cc, sc := tlsConfigs(t)
	core, ln := listen(t, sc)
	acceptErr := make(chan error, 1)
	go func() {
		in, err := ln.Accept(context.Background())
		if err != nil {
			acceptErr <- err
			return
		}
		require.NoError(t, in.Reject())
		_, err = in.Accept(context.Background())
		acceptErr <- err
	}()
	_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
	require.ErrorIs(t, err, session.ErrRejected)
	require.ErrorIs(t, <-acceptErr, session.ErrRejected, "Accept after Reject")
}

func TestGarbageClientDoesNotHurtListener(t *testing.T) {
	cc, sc := tlsConfigs(t)
	sc.HandshakeTimeout = time.Second
	core, ln := listen(t, sc)
	addr := ln.Addr().String()
	for _, garbage := range []string{
		"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
		"\xffQS0\r\n\r\n\x00",                               // QMux without TLS
		"\x16\x03\x01\xff\xff" + strings.Repeat("\x00", 64), // a TLS record header that lies
	} {
		raw, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = raw.Write([]byte(garbage))
		require.NoError(t, err)
		in, err := ln.Accept(context.Background())
		require.NoError(t, err)
		_, err = in.Accept(context.Background())
		require.Error(t, err)
		// The listener hung up: reading ends (an alert at most, then EOF).
		require.NoError(t, raw.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = io.ReadAll(raw)
		require.NoError(t, err)
		require.NoError(t, raw.Close())
	}
	// A real client still gets in.
	accepted := make(chan error, 1)
	go func() {
		in, err := ln.Accept(context.Background())
		if err == nil {
			var c session.Conn
			if c, err = in.Accept(context.Background()); err == nil {
				_ = c.CloseWithError(0, "")
			}
		}
		accepted <- err
	}()
	c, err := core.Dial(context.Background(), addr, cc)
	require.NoError(t, err)
	_ = c.CloseWithError(0, "")
	require.NoError(t, <-accepted)

	// An attempt the application never looks at is refused by the handshake timer (or by
	// closing the listener); goleak checks that nothing is left behind.
	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Write([]byte("garbage"))
	require.NoError(t, err)
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(sc.HandshakeTimeout+5*time.Second)))
	_, err = io.ReadAll(raw)
	require.NoError(t, err)
}

// transferSize is how much each stream of TestConcurrentStreamsIntegrity carries each way:
// 10 MiB, or 1 MiB under -race, which slows the transfer about tenfold (the test stays
// within about 20 s either way).
func transferSize() int64 {
	if raceEnabled {
		return 1 << 20
	}
	return 10 << 20
}

func TestConcurrentStreamsIntegrity(t *testing.T) {
	const streams = 100
	size := transferSize()
	cc, sc := tlsConfigs(t)
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = streams+10, streams+10
	client, server := connect(t, cc, sc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The server echoes every stream.
	var echoes sync.WaitGroup
	echoErrs := make(chan error, streams)
	echoes.Go(func() {
		for range streams {
			s, err := server.AcceptStream(ctx)
			if err != nil {
				echoErrs <- err
				return
			}
			echoes.Go(func() {
				_, err := io.Copy(s, s)
				echoErrs <- errors.Join(err, s.Close())
			})
		}
	})

	errs := make(chan error, streams)
	for i := range streams {
		go func() { errs <- echoStream(ctx, client, uint64(i), size) }()
	}
	for range streams {
		require.NoError(t, <-errs)
	}
	echoes.Wait()
	close(echoErrs)
	for err := range echoErrs {
		require.NoError(t, err)
	}
}

// echoStream sends size pseudo-random bytes on a new stream, reads the echo, and compares
// the SHA-256 of both.
func echoStream(ctx context.Context, c session.Conn, seed uint64, size int64) error {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	sentHash, recvHash := sha256.New(), sha256.New()
	writeErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(s, sentHash), io.LimitReader(rand.NewChaCha8(key), size))
		writeErr <- errors.Join(err, s.Close())
	}()
	n, err := io.Copy(recvHash, s)
	if err := errors.Join(err, <-writeErr); err != nil {
		return fmt.Errorf("stream %d: %w", s.StreamID(), err)
	}
	if n != size {
		return fmt.Errorf("stream %d: echoed %d bytes, sent %d", s.StreamID(), n, size)
	}
	if string(sentHash.Sum(nil)) != string(recvHash.Sum(nil)) {
		return fmt.Errorf("stream %d: echoed data differs", s.StreamID())
	}
	return nil
}

// A connection that ended is forgotten by its core without a goroutine per connection
// waiting for it; Close ends and waits for those still open.
func TestCoreForgetsEndedConnections(t *testing.T) {
	cc, sc := tlsConfigs(t)
	core, ln := listen(t, sc)
	conns := func() int {
		core.mu.Lock()
		defer core.mu.Unlock()
		return len(core.conns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for {
			in, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			_, _ = in.Accept(ctx)
		}
	}()
	var open []session.Conn
	for range 3 {
		c, err := core.Dial(ctx, ln.Addr().String(), cc)
		require.NoError(t, err)
		open = append(open, c)
	}
	require.Eventually(t, func() bool { return conns() == 6 }, 5*time.Second, time.Millisecond, "both ends of 3 connections")

	require.NoError(t, open[0].CloseWithError(0, ""))
	require.Eventually(t, func() bool { return conns() == 4 }, 5*time.Second, time.Millisecond, "both ends of the closed one are forgotten")

	require.NoError(t, core.Close())
	require.Zero(t, conns())
	for _, c := range open[1:] {
		require.Error(t, c.Context().Err(), "Close ended the connection")
		<-c.(*conn).life.ended
	}
}
