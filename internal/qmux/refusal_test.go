package qmux

// Refusals across the TLS and QMux layers: ALPN required on both roles (against a raw
// crypto/tls peer with a peerwire credential and no NextProtos), and the application's
// rejection as CONNECTION_CLOSE with session.CodeRejected.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
	"testing/synctest"
)

func TestListenerRefusesClientWithoutALPN(t *testing.T) {
	cc, sc := tlsConfigs(t)
	_, ln := listen(t, sc)
	accepted := acceptOne(t, ln)
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	tcfg := certs.ClientConfig(cc.Credential, cc.Trust, nil) // no ALPN offered
	tcfg.VerifyConnection = nil                              // and none required
	client := tls.Client(raw, tcfg)
	clientErr := make(chan error, 1)
	go func() {
		err := client.Handshake()
		if err == nil {
			_, err = client.Read(make([]byte, 1)) // TLS 1.3: the server's verdict comes after
		}
		clientErr <- err
	}()
	r := <-accepted
	var ae *session.ALPNError
	require.ErrorAs(t, r.err, &ae)
	require.ErrorIs(t, r.err, certs.ErrNoApplicationProtocol)
	require.Error(t, <-clientErr, "the client is refused")
}

func TestDialerRefusesListenerWithoutALPN(t *testing.T) {
	cc, sc := tlsConfigs(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	served := make(chan error, 1)
	go func() {
		raw, err := tcp.Accept()
		if err != nil {
			served <- err
			return
		}
		defer raw.Close()
		tcfg := certs.ServerConfig(sc.Credential, sc.Trust, nil) // selects none
		tcfg.VerifyConnection = nil                              // and requires none
		server := tls.Server(raw, tcfg)
		served <- server.Handshake()
	}()
	core := New()
	defer core.Close()
	_, err = core.Dial(context.Background(), tcp.Addr().String(), cc)
	var ae *session.ALPNError
	require.ErrorAs(t, err, &ae)
	require.ErrorIs(t, err, certs.ErrNoApplicationProtocol)
	require.Equal(t, cc.ALPN, ae.Offered)
	<-served
}

// TestRejectClosesWithCodeRejected: Reject lets the handshake complete, then sends our
// parameters and CONNECTION_CLOSE with session.CodeRejected, reason "rejected", in one
// record.
func TestRejectClosesWithCodeRejected(t *testing.T) {
	cc, sc := tlsConfigs(t)
	_, ln := listen(t, sc)
	go func() {
		if in, err := ln.Accept(context.Background()); err == nil {
			_ = in.Reject()
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	client := tls.Client(raw, certs.ClientConfig(cc.Credential, cc.Trust, []string{ALPN("test")}))
	require.NoError(t, client.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, client.Handshake(), "the handshake completes")
	rr := wire.NewRecordReader(client, wire.DefaultMaxRecordSize)
	rec, err := rr.Next()
	require.NoError(t, err)
	var p wire.Parser
	var frames []wire.Frame
	for len(rec) > 0 {
		f, n, err := p.ParseNext(rec)
		require.NoError(t, err)
		frames = append(frames, cloneFrame(f))
		rec = rec[n:]
	}
	require.Len(t, frames, 2)
	require.IsType(t, &wire.TransportParametersFrame{}, frames[0])
	require.Equal(t, &wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: uint64(session.CodeRejected), Reason: []byte("rejected")}, frames[1])
}

// TestRejectionAfterDialIsTheCause: an application close with session.CodeRejected that
// reaches a dialer after Dial returned is the cause of its connection's context, matching
// session.ErrRejected; another code does not.
func TestRejectionAfterDialIsTheCause(t *testing.T) {
	for _, code := range []session.ApplicationErrorCode{session.CodeRejected, session.CodeShutdown} {
		synctest.Test(t, func(t *testing.T) {
			p := newPeer(t, testConfig(), true) // the conn is the dialer
			p.handshake(peerParams())
			p.send(&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: uint64(code), Reason: []byte("rejected")})
			<-p.c.Context().Done()
			cause := context.Cause(p.c.Context())
			var ce *session.CloseError
			require.ErrorAs(t, cause, &ce)
			require.Equal(t, session.ClosedByApplication, ce.Kind)
			require.Equal(t, uint64(code), ce.Code)
			require.True(t, ce.Remote)
			require.Equal(t, code == session.CodeRejected, errors.Is(cause, session.ErrRejected))
		})
	}
}
