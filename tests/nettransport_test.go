package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/nettransport"
)

// The Rust transport's ALPN test: the server's preference order decides among the protocols both
// sides support.
func TestALPNNegotiation(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		l, err := newTransport(t, nettransport.Config{}).Listen(listen, []string{"yy1", "zzz", "bbb", "ccc"}, trusting(sc, cc))
		require.NoError(t, err)
		got := acceptOne(ctx, l)
		c, err := newTransport(t, nettransport.Config{}).Dial(ctx, l.Addr(), []string{"xxx", "yyy", "bbb", "ccc"}, trusting(cc, sc))
		require.NoError(t, err)
		defer c.Close()
		a := <-got
		require.NoError(t, a.err)
		defer a.conn.Close()
		require.Equal(t, "bbb", c.ALPN())
		require.Equal(t, "bbb", a.conn.ALPN())
		require.True(t, c.ALPNIs("bbb"))
		require.False(t, c.ALPNIs("ccc"))
	})
}

func TestNoCommonALPN(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		l, err := newTransport(t, nettransport.Config{}).Listen(listen, []string{"a"}, trusting(sc, cc))
		require.NoError(t, err)
		got := acceptOne(ctx, l)
		_, err = newTransport(t, nettransport.Config{}).Dial(ctx, l.Addr(), []string{"b"}, trusting(cc, sc))
		var ae *nettransport.ALPNError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, []string{"b"}, ae.Offered)
		require.Error(t, (<-got).err)
	})
}

func TestIdentitiesMatchOnBothEnds(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{})
		require.Equal(t, s.clientCert.Hash(), s.client.LocalIdentity())
		require.Equal(t, s.serverCert.Hash(), s.server.LocalIdentity())
		require.Equal(t, s.client.LocalIdentity(), s.server.RemoteIdentity())
		require.Equal(t, s.server.LocalIdentity(), s.client.RemoteIdentity())
		require.True(t, s.client.RemotePeerID().Equal(s.serverCert.PeerID()))
		require.True(t, s.server.RemotePeerID().Equal(s.clientCert.PeerID()))
		require.Equal(t, s.serverCert.Leaf().Raw, s.client.RemoteCertificate().Raw)
		require.Equal(t, s.clientCert.IdentityKeys(), s.server.RemoteIdentityKeys())
		require.Equal(t, s.client.LocalAddr().String(), s.server.RemoteAddr().String())
		require.Equal(t, s.server.LocalAddr().String(), s.client.RemoteAddr().String())
		require.Contains(t, listen.String(), string(s.client.Core()))
		require.Equal(t, s.client.Core(), s.server.Core())
	})
}

// trustMode is how one side's policy regards the other side's certificate.
type trustMode int

const (
	byHash trustMode = iota
	byKey
	byNeitherHash // the policy lists other hashes only
	byNeitherKey  // the policy lists other keys only
)

func (m trustMode) String() string {
	return [...]string{"by-hash", "by-key", "untrusted-hash", "untrusted-key"}[m]
}

func policyFor(t *testing.T, m trustMode, peer *certs.Credential) certs.TrustPolicy {
	other := newCert(t)
	switch m {
	case byHash:
		return certs.TrustPolicy{Hashes: []identity.CertHash{peer.Hash()}}
	case byKey:
		return certs.TrustPolicy{Keys: peer.IdentityKeys()}
	case byNeitherHash:
		return certs.TrustPolicy{Hashes: []identity.CertHash{other.Hash()}}
	default:
		return certs.TrustPolicy{Keys: other.IdentityKeys()}
	}
}

func trusts(m trustMode) bool { return m == byHash || m == byKey }

// Every combination of how the server regards the client and the client the server: the
// connection exists only when both trust, and otherwise the refusing side reports why and the
// refused side learns that its certificate was refused, by whom.
func TestTrustMatrix(t *testing.T) {
	modes := []trustMode{byHash, byKey, byNeitherHash, byNeitherKey}
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		for _, server := range modes {
			for _, client := range modes {
				t.Run(fmt.Sprintf("server-%v/client-%v", server, client), func(t *testing.T) {
					ctx := testCtx(t)
					cc, sc := newCert(t), newCert(t)
					scred := &nettransport.Credential{Certificate: sc, Trust: policyFor(t, server, cc)}
					ccred := &nettransport.Credential{Certificate: cc, Trust: policyFor(t, client, sc)}
					l, err := newTransport(t, nettransport.Config{}).Listen(listen, []string{"t"}, scred)
					require.NoError(t, err)
					got := acceptOne(ctx, l)
					conn, dialErr := newTransport(t, nettransport.Config{}).Dial(ctx, l.Addr(), []string{"t"}, ccred)
					a := <-got
					switch {
					case trusts(server) && trusts(client):
						require.NoError(t, dialErr)
						require.NoError(t, a.err)
						require.NoError(t, conn.Send(ctx, []byte("hi")))
						msg, _, err := a.conn.Recv(ctx)
						require.NoError(t, err)
						require.Equal(t, "hi", string(msg))
						require.NoError(t, conn.Close())
						_ = a.conn.Close()
					case !trusts(client):
						// The client checks the server's certificate first (TLS 1.3 order).
						require.Nil(t, conn)
						assertRejected(t, dialErr, client, sc, ccred.Trust, l.Addr())
						assertRejectedByPeer(t, a.err, sc)
					default:
						require.Nil(t, conn)
						assertRejectedByPeer(t, dialErr, cc)
						assertRejected(t, a.err, server, cc, scred.Trust, nil)
					}
				})
			}
		}
	})
}

func assertRejected(t *testing.T, err error, m trustMode, peer *certs.Credential, policy certs.TrustPolicy, peerAddr ma.Multiaddr) {
	t.Helper()
	var re *certs.RejectError
	require.ErrorAs(t, err, &re, "want our rejection, got %v", err)
	require.ErrorIs(t, err, certs.ErrCertificateRejected)
	require.True(t, re.PeerHash.Equal(peer.Hash()))
	require.Equal(t, peer.IdentityKeys(), re.PresentedKeys)
	require.NotNil(t, re.PeerAddr)
	if peerAddr != nil {
		require.Contains(t, peerAddr.String(), portOf(re.PeerAddr))
	}
	if m == byNeitherKey {
		require.Equal(t, certs.ReasonKeysNotTrusted, re.Reason)
		require.Equal(t, policy.Keys, re.TrustedKeys)
		require.Contains(t, re.Error(), peer.IdentityKeys()[0].Short())
		require.Contains(t, re.Error(), policy.Keys[0].Short())
	} else {
		require.Equal(t, certs.ReasonHashNotTrusted, re.Reason)
	}
	require.Contains(t, re.Error(), re.PeerAddr.String())
}

func assertRejectedByPeer(t *testing.T, err error, ours *certs.Credential) {
	t.Helper()
	var rp *certs.RejectedByPeerError
	require.ErrorAs(t, err, &rp, "want a rejection by the peer, got %v", err)
	require.ErrorIs(t, err, certs.ErrCertificateRejected)
	require.True(t, rp.OurHash.Equal(ours.Hash()))
	require.Equal(t, ours.IdentityKeys(), rp.OurKeys)
	require.NotNil(t, rp.PeerAddr)
	require.Contains(t, rp.Error(), ours.IdentityKeys()[0].Short())
	require.Contains(t, rp.Error(), rp.PeerAddr.String())
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return "/" + port + "/"
}

func TestAnyAuthenticatedMustBeExplicit(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		_, err := newTransport(t, nettransport.Config{}).Listen(listen, []string{"t"}, &nettransport.Credential{Certificate: newCert(t)})
		require.ErrorIs(t, err, certs.ErrNoTrustedPeers)

		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		l, err := newTransport(t, nettransport.Config{}).Listen(listen, []string{"t"}, &nettransport.Credential{Certificate: sc, Trust: certs.TrustPolicy{AnyAuthenticated: true}})
		require.NoError(t, err)
		got := acceptOne(ctx, l)
		c, err := newTransport(t, nettransport.Config{}).Dial(ctx, l.Addr(), []string{"t"}, trusting(cc, sc))
		require.NoError(t, err)
		a := <-got
		require.NoError(t, a.err)
		require.Equal(t, cc.Hash(), a.conn.RemoteIdentity())
		require.NoError(t, c.Close())
	})
}

func TestRejectIncomingRequest(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		l, err := newTransport(t, nettransport.Config{}).Listen(listen, []string{"t"}, trusting(sc, cc))
		require.NoError(t, err)
		go func() {
			in, err := l.Accept(ctx)
			if err == nil {
				_ = in.Reject()
			}
		}()
		_, err = newTransport(t, nettransport.Config{}).Dial(ctx, l.Addr(), []string{"t"}, trusting(cc, sc))
		require.ErrorIs(t, err, nettransport.ErrRejected)
	})
}

func TestMessageSizes(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{})
		ctx := testCtx(t)
		for _, n := range []int{0, 1, 1 << 20, framing.DefaultMaxMessageSize} {
			msg := pattern(n)
			require.NoError(t, s.client.Send(ctx, msg), "size %d", n)
			got, took, err := s.server.Recv(ctx)
			require.NoError(t, err)
			require.Equal(t, n, len(got))
			require.True(t, bytes.Equal(msg, got), "size %d corrupted", n)
			require.GreaterOrEqual(t, took, time.Duration(0))
		}
	})
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestOversizeMessageRefusedBeforeSending(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		cfg := nettransport.Config{MaxMessageSize: 1024}
		s := connect(t, listen, cfg, cfg)
		ctx := testCtx(t)
		err := s.client.Send(ctx, make([]byte, 1025))
		var tl *nettransport.TooLargeError
		require.ErrorAs(t, err, &tl)
		require.Equal(t, uint64(1025), tl.Size)
		require.Equal(t, uint64(1024), tl.Max)
		require.ErrorIs(t, err, framing.ErrTooLarge)
		// Nothing was sent: the next message is the first to arrive.
		require.NoError(t, s.client.Send(ctx, []byte("after")))
		got, _, err := s.server.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "after", string(got))
	})
}

// A receiver with a smaller limit refuses the message without allocating it; the sender gets
// a typed error and its next message, on a fresh stream, arrives.
func TestPeerRefusesOversizeMessageAndSenderRecovers(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{MaxMessageSize: 64 << 10})
		ctx := testCtx(t)
		big := pattern(4 << 20)
		var err error
		// The refusal (STOP_SENDING) reaches the sender during this write or the next.
		for i := 0; i < 50 && err == nil; i++ {
			err = s.client.Send(ctx, big)
		}
		var pr *nettransport.PeerRefusedError
		require.ErrorAs(t, err, &pr)
		require.NoError(t, s.client.Send(ctx, []byte("small")))
		got, _, err := s.server.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "small", string(got))
	})
}

func TestOpenStreamTimeoutWithoutStreamCredit(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		const timeout = 400 * time.Millisecond
		s := connect(t, listen, nettransport.Config{StreamTimeout: timeout}, nettransport.Config{MaxIncomingUniStreams: -1})
		start := time.Now()
		err := s.client.Send(testCtx(t), []byte("x"))
		elapsed := time.Since(start)
		var te *nettransport.TimeoutError
		require.ErrorAs(t, err, &te)
		require.Equal(t, timeout, te.After)
		require.Contains(t, te.Op, "open")
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.GreaterOrEqual(t, elapsed, timeout)
		require.Less(t, elapsed, timeout+3*time.Second)
	})
}

func TestWriteTimeoutWhenPeerDoesNotRead(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		const timeout = 400 * time.Millisecond
		s := connect(t, listen, nettransport.Config{StreamTimeout: timeout}, nettransport.Config{ReceiveQueue: 1})
		ctx := testCtx(t)
		msg := pattern(1 << 20)
		var err error
		var last time.Duration
		for i := 0; i < 200 && err == nil; i++ {
			start := time.Now()
			err = s.client.Send(ctx, msg)
			last = time.Since(start)
		}
		var te *nettransport.TimeoutError
		require.ErrorAs(t, err, &te)
		require.Equal(t, "write", te.Op)
		require.GreaterOrEqual(t, last, timeout)
		require.Less(t, last, timeout+3*time.Second)

		// The receiver catches up; a new send works on a fresh stream, and every message the
		// receiver gets is whole.
		done := make(chan error, 1)
		go func() {
			for {
				got, _, err := s.server.Recv(ctx)
				if err != nil {
					done <- err
					return
				}
				if string(got) == "end" {
					done <- nil
					return
				}
				if !bytes.Equal(got, msg) {
					done <- errors.New("corrupted message")
					return
				}
			}
		}()
		require.NoError(t, s.client.Send(ctx, []byte("end")))
		require.NoError(t, <-done)
	})
}

func TestRecvIsCancellable(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{})
		cctx, cancel := context.WithCancel(context.Background())
		ctx := newDoneWatchCtx(cctx)
		errc := make(chan error, 1)
		go func() {
			_, _, err := s.server.Recv(ctx)
			errc <- err
		}()
		select {
		case <-ctx.asked: // Recv found no message and waits on ctx.Done()
		case err := <-errc:
			t.Fatalf("Recv returned before cancel: %v", err)
		}
		cancel()
		select {
		case err := <-errc:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("Recv did not return after cancel")
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		_, _, err := s.server.Recv(ctx2)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// doneWatchCtx is a context that reports, by closing asked, the first call of its Done: a
// Recv calls it only once it found no message and waits.
type doneWatchCtx struct {
	context.Context
	once  sync.Once
	asked chan struct{}
}

func newDoneWatchCtx(ctx context.Context) *doneWatchCtx {
	return &doneWatchCtx{Context: ctx, asked: make(chan struct{})}
}

func (c *doneWatchCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

func TestTenThousandMessagesInOrder(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{})
		ctx := testCtx(t)
		const n = 10000
		errc := make(chan error, 1)
		go func() {
			var b [8]byte
			for i := range n {
				binary.BigEndian.PutUint64(b[:], uint64(i))
				if err := s.client.Send(ctx, b[:]); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for i := range n {
			got, _, err := s.server.Recv(ctx)
			require.NoError(t, err)
			require.Len(t, got, 8)
			require.Equal(t, uint64(i), binary.BigEndian.Uint64(got), "message %d out of order", i)
		}
		require.NoError(t, <-errc)
	})
}

func TestConcurrentSenders(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		for _, streams := range []int{1, 4} {
			t.Run(fmt.Sprintf("send-streams-%d", streams), func(t *testing.T) {
				s := connect(t, listen, nettransport.Config{SendStreams: streams}, nettransport.Config{})
				ctx := testCtx(t)
				const senders, each = 8, 500
				var wg sync.WaitGroup
				errs := make(chan error, senders)
				for g := range senders {
					wg.Go(func() {
						for i := range each {
							msg := fmt.Appendf(nil, "%d:%d:%s", g, i, bytes.Repeat([]byte{'x'}, (g*31+i)%300))
							if err := s.client.Send(ctx, msg); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				next := make([]int, senders)
				for range senders * each {
					got, _, err := s.server.Recv(ctx)
					require.NoError(t, err)
					var g, i int
					_, err = fmt.Sscanf(string(got), "%d:%d:", &g, &i)
					require.NoError(t, err)
					if streams == 1 {
						require.Equal(t, next[g], i, "sender %d out of order", g)
					}
					next[g]++
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				for g := range senders {
					require.Equal(t, each, next[g])
				}
			})
		}
	})
}

// Close is graceful: messages sent just before it are all delivered, then the peer sees a
// close with code 0.
func TestGracefulCloseDeliversEverything(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{})
		ctx := testCtx(t)
		const n = 2000
		recvd := make(chan int, 1)
		go func() {
			count := 0
			for {
				if _, _, err := s.server.Recv(ctx); err != nil {
					break
				}
				count++
			}
			recvd <- count
		}()
		for i := range n {
			require.NoError(t, s.client.Send(ctx, fmt.Appendf(nil, "m%d", i)))
		}
		require.NoError(t, s.client.Close())
		require.Equal(t, n, <-recvd)
		<-s.server.Done()
		var ce *nettransport.CloseError
		require.ErrorAs(t, s.server.Err(), &ce)
		require.Equal(t, uint64(0), ce.Code)
		require.True(t, ce.Remote)
	})
}

func TestCloseWithCodeIsSeenByPeer(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		s := connect(t, listen, nettransport.Config{}, nettransport.Config{})
		require.NoError(t, s.server.Err())
		require.NoError(t, s.client.CloseWithError(42, "going away"))
		select {
		case <-s.server.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("peer did not see the close")
		}
		var ce *nettransport.CloseError
		require.ErrorAs(t, s.server.Err(), &ce)
		require.Equal(t, uint64(42), ce.Code)
		require.Equal(t, "going away", ce.Reason)
		require.True(t, ce.Remote)
		require.ErrorIs(t, s.server.Err(), net.ErrClosed)
		require.ErrorIs(t, context.Cause(s.server.Context()), net.ErrClosed)

		require.ErrorAs(t, s.client.Err(), &ce)
		require.False(t, ce.Remote)
		// Operations after close report the close.
		require.ErrorIs(t, s.client.Send(testCtx(t), []byte("x")), net.ErrClosed)
		_, _, err := s.server.Recv(testCtx(t))
		require.ErrorAs(t, err, &ce)
	})
}

func TestPeerGoneIsDetected(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		str := newTransport(t, nettransport.Config{})
		ctr, err := nettransport.New(nettransport.Config{})
		require.NoError(t, err)
		l, err := str.Listen(listen, []string{"t"}, trusting(sc, cc))
		require.NoError(t, err)
		got := acceptOne(ctx, l)
		_, err = ctr.Dial(ctx, l.Addr(), []string{"t"}, trusting(cc, sc))
		require.NoError(t, err)
		a := <-got
		require.NoError(t, a.err)
		// Closing the dialing transport closes its connections: the peer learns of it.
		require.NoError(t, ctr.Close())
		select {
		case <-a.conn.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("peer's end not detected")
		}
		var ce *nettransport.CloseError
		require.ErrorAs(t, a.conn.Err(), &ce)
		require.True(t, ce.Remote)
		require.Equal(t, uint64(nettransport.CodeShutdown), ce.Code)
	})
}

func TestBadAddressesAreRefused(t *testing.T) {
	tr := newTransport(t, nettransport.Config{})
	cred := trusting(newCert(t), newCert(t))
	for _, a := range []string{"/ip4/127.0.0.1/tcp/1234", "/ip4/127.0.0.1/udp/1234", "/ip4/127.0.0.1/udp/1234/quic-v1/p2p-circuit"} {
		_, err := tr.Listen(ma.StringCast(a), []string{"t"}, cred)
		var ae *nettransport.AddrError
		require.ErrorAs(t, err, &ae, a)
		_, err = tr.Dial(testCtx(t), ma.StringCast(a), []string{"t"}, cred)
		require.ErrorAs(t, err, &ae, a)
	}
	_, err := tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), nil, cred)
	require.Error(t, err)
	_, err = tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), []string{"t"}, nil)
	require.Error(t, err)
}

func TestTransportCloseEndsEverything(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		ctx := testCtx(t)
		cc, sc := newCert(t), newCert(t)
		str, err := nettransport.New(nettransport.Config{})
		require.NoError(t, err)
		ctr := newTransport(t, nettransport.Config{})
		l, err := str.Listen(listen, []string{"t"}, trusting(sc, cc))
		require.NoError(t, err)
		got := acceptOne(ctx, l)
		c, err := ctr.Dial(ctx, l.Addr(), []string{"t"}, trusting(cc, sc))
		require.NoError(t, err)
		a := <-got
		require.NoError(t, a.err)
		require.NoError(t, str.Close())
		<-a.conn.Done()
		<-c.Done()
		_, err = l.Accept(ctx)
		require.Error(t, err)
		_, err = str.Listen(listen, []string{"t"}, trusting(sc, cc))
		require.ErrorIs(t, err, nettransport.ErrTransportClosed)
	})
}

// A graceful close that cannot confirm delivery (the peer reads nothing) reports it to both
// sides: a *TimeoutError locally, CodeUndelivered at the peer.
func TestCloseThatCannotDeliverSaysSo(t *testing.T) {
	forEachCore(t, func(t *testing.T, listen ma.Multiaddr) {
		const timeout = 500 * time.Millisecond
		s := connect(t, listen, nettransport.Config{StreamTimeout: timeout}, nettransport.Config{ReceiveQueue: 1})
		ctx := testCtx(t)
		msg := pattern(256 << 10)
		for range 3 {
			require.NoError(t, s.client.Send(ctx, msg))
		}
		err := s.client.Close()
		var te *nettransport.TimeoutError
		require.ErrorAs(t, err, &te)
		<-s.server.Done()
		var ce *nettransport.CloseError
		require.ErrorAs(t, s.server.Err(), &ce)
		require.Equal(t, nettransport.ClosedByApplication, ce.Kind)
		require.Equal(t, uint64(nettransport.CodeUndelivered), ce.Code)
		require.True(t, ce.Remote)
	})
}
