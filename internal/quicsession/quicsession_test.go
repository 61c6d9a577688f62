package quicsession_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/internal/quicsession"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quicCore() sessiontest.CoreFactory { return sessiontest.Cores()[0] }

func TestConnectStateAndStreams(t *testing.T) {
	cc, sc := sessiontest.Configs(t)
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = 4, 4
	p := sessiontest.Connect(t, quicCore(), cc, sc)

	cs, ss := p.Client.State(), p.Server.State()
	require.Equal(t, "quic", cs.Core)
	require.Equal(t, "test", cs.ALPN)
	require.Equal(t, "test", ss.ALPN)
	require.True(t, cs.Peer.Hash.Equal(sc.Credential.Hash()))
	require.True(t, ss.Peer.Hash.Equal(cc.Credential.Hash()))
	require.Equal(t, cs.LocalAddr.String(), ss.RemoteAddr.String())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := p.Client.OpenStream(ctx)
	require.NoError(t, err)
	_, err = s.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	rs, err := p.Server.AcceptStream(ctx)
	require.NoError(t, err)
	b, err := io.ReadAll(rs)
	require.NoError(t, err)
	require.Equal(t, "ping", string(b))
	_, err = rs.Write([]byte("pong"))
	require.NoError(t, err)
	require.NoError(t, rs.Close())
	b, err = io.ReadAll(s)
	require.NoError(t, err)
	require.Equal(t, "pong", string(b))
}

func TestStreamCapacityNotifications(t *testing.T) {
	cc, sc := sessiontest.Configs(t)
	sc.MaxIncomingUniStreams = 2
	cc.TrackStreamCapacity, sc.TrackStreamCapacity = true, true
	p := sessiontest.Connect(t, quicCore(), cc, sc)
	client, ok := p.Client.(session.CapacityConn)
	require.True(t, ok, "a connection dialed with TrackStreamCapacity reports its capacity")
	_, ok = p.Server.(session.CapacityConn)
	require.True(t, ok, "a connection accepted with TrackStreamCapacity reports its capacity")
	require.Equal(t, int64(2), client.StreamCapacity().Uni)
	require.Equal(t, int64(0), client.StreamCapacity().Bidi)

	raised := make(chan session.Capacity, 16)
	stop := client.OnStreamCapacity(func(c session.Capacity) { raised <- c })
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var streams []session.SendStream
	for range 2 {
		s, err := p.Client.OpenUniStream(ctx)
		require.NoError(t, err)
		streams = append(streams, s)
	}
	require.Equal(t, int64(0), client.StreamCapacity().Uni)
	// Finishing both streams on both sides lets the server grant more (MAX_STREAMS).
	for _, s := range streams {
		require.NoError(t, s.Close())
		rs, err := p.Server.AcceptUniStream(ctx)
		require.NoError(t, err)
		_, err = io.ReadAll(rs)
		require.NoError(t, err)
	}
	select {
	case c := <-raised:
		require.Positive(t, c.Uni)
	case <-ctx.Done():
		t.Fatal("no stream capacity notification")
	}
	require.Positive(t, client.StreamCapacity().Uni)
}

// Without TrackStreamCapacity no tracer is installed and the connection does not claim to
// know its capacity.
func TestNoStreamCapacityByDefault(t *testing.T) {
	p := sessiontest.Connect(t, quicCore(), nil, nil)
	_, ok := p.Client.(session.CapacityConn)
	require.False(t, ok)
	_, ok = p.Server.(session.CapacityConn)
	require.False(t, ok)
	var qc *quic.Conn
	require.True(t, p.Client.(interface{ As(any) bool }).As(&qc))
	require.Nil(t, qc.QlogTrace(), "no tracer on the client")
	require.True(t, p.Server.(interface{ As(any) bool }).As(&qc))
	require.Nil(t, qc.QlogTrace(), "no tracer on the server")
}

func TestCloseCarriesCodeAndReason(t *testing.T) {
	p := sessiontest.Connect(t, quicCore(), nil, nil)
	require.NoError(t, p.Client.CloseWithError(7, "bye"))
	select {
	case <-p.Server.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the close")
	}
	var ce *session.CloseError
	require.ErrorAs(t, context.Cause(p.Server.Context()), &ce)
	require.Equal(t, session.ClosedByApplication, ce.Kind)
	require.Equal(t, uint64(7), ce.Code)
	require.Equal(t, "bye", ce.Reason)
	require.True(t, ce.Remote)
	require.ErrorIs(t, ce, errNetClosed)

	require.ErrorAs(t, context.Cause(p.Client.Context()), &ce)
	require.False(t, ce.Remote)
}

var errNetClosed = net.ErrClosed

// TestSingleStack: with SingleStack, an IPv4 and an IPv6 wildcard listener share a port.
func TestSingleStack(t *testing.T) {
	_, sc := sessiontest.Configs(t)
	sc.SingleStack = true
	core := quicsession.New()
	defer core.Close()
	l4, err := core.Listen("0.0.0.0:0", sc)
	require.NoError(t, err)
	defer l4.Close()
	_, port, err := net.SplitHostPort(l4.Addr().String())
	require.NoError(t, err)
	l6, err := core.Listen(net.JoinHostPort("::", port), sc)
	require.NoError(t, err)
	defer l6.Close()
	require.Equal(t, l4.Addr().(*net.UDPAddr).Port, l6.Addr().(*net.UDPAddr).Port)
}

// TestGSOAsRawQuicGo: quic-go uses generic segmentation offload on our connections wherever
// it does on its own (on Linux by default; QUIC_GO_DISABLE_GSO turns it off for both).
func TestGSOAsRawQuicGo(t *testing.T) {
	p := sessiontest.Connect(t, quicCore(), nil, nil)
	var client, server *quic.Conn
	require.True(t, p.Client.(interface{ As(any) bool }).As(&client))
	require.True(t, p.Server.(interface{ As(any) bool }).As(&server))

	cc, sc := sessiontest.Configs(t)
	ctc := &tls.Config{Certificates: []tls.Certificate{cc.Credential.TLSCertificate()}, NextProtos: cc.ALPN,
		InsecureSkipVerify: true} //nolint:gosec // the reference connection only reports its GSO use
	stc := &tls.Config{Certificates: []tls.Certificate{sc.Credential.TLSCertificate()}, NextProtos: sc.ALPN}
	ln, err := rawTransport(t).Listen(stc, nil)
	require.NoError(t, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := rawTransport(t).Dial(ctx, ln.Addr(), ctc, nil)
	require.NoError(t, err)
	defer raw.CloseWithError(0, "")
	rawServer, err := ln.Accept(ctx)
	require.NoError(t, err)
	defer rawServer.CloseWithError(0, "")

	require.Equal(t, raw.ConnectionState().GSO, client.ConnectionState().GSO)
	require.Equal(t, rawServer.ConnectionState().GSO, server.ConnectionState().GSO)
}
