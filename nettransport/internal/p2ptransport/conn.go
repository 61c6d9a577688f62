package p2ptransport

import (
	"context"
	"crypto/tls"
	"sync"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/session"
)

// conn adapts an authenticated session connection to tpt.CapableConn: one bidirectional
// session stream per libp2p stream; no unidirectional streams.
type conn struct {
	sc    session.Conn
	t     *Transport
	scope network.ConnManagementScope

	localPeer, remotePeer peer.ID
	remoteKey             ic.PubKey
	localAddr, remoteAddr ma.Multiaddr

	closeOnce sync.Once
	closeErr  error
}

var _ tpt.CapableConn = (*conn)(nil)

// Close closes the connection with code 0. Like go-libp2p's transports it must be called
// even after the peer closed the connection: it releases the resource scope.
func (c *conn) Close() error { return c.CloseWithError(0) }

// CloseWithError closes the connection with an application code the peer sees in the
// *network.ConnError of its pending and later operations.
func (c *conn) CloseWithError(code network.ConnErrorCode) error {
	c.closeOnce.Do(func() {
		c.closeErr = c.sc.CloseWithError(session.ApplicationErrorCode(code), "")
		c.t.forget(c)
		c.scope.Done()
	})
	return c.closeErr
}

// IsClosed reports whether the connection ended, whoever closed it.
func (c *conn) IsClosed() bool { return c.sc.Context().Err() != nil }

// OpenStream opens a bidirectional stream, waiting for the peer's stream credit until ctx is
// done.
func (c *conn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	s, err := c.sc.OpenStream(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return &stream{s: s}, nil
}

// AcceptStream waits for the peer's next stream until the connection closes.
func (c *conn) AcceptStream() (network.MuxedStream, error) {
	s, err := c.sc.AcceptStream(context.Background())
	if err != nil {
		return nil, translate(err)
	}
	return &stream{s: s}, nil
}

// As reaches what lies under the libp2p connection. Supported targets:
//
//   - *tls.ConnectionState: the TLS state of the handshake;
//   - **certs.PeerCertificate: the peer's verified certificate (hash, every identity key
//     that signed it, including peerwire co-signers);
//   - *session.Conn: the session connection (for code inside peerwire);
//   - whatever the core's connection itself supports through an As method (the QUIC core:
//     **quic.Conn, as go-libp2p's QUIC transport).
func (c *conn) As(target any) bool {
	switch t := target.(type) {
	case *tls.ConnectionState:
		*t = c.sc.State().TLS
		return true
	case **certs.PeerCertificate:
		*t = c.sc.State().Peer
		return true
	case *session.Conn:
		*t = c.sc
		return true
	}
	if a, ok := c.sc.(interface{ As(any) bool }); ok {
		return a.As(target)
	}
	return false
}

func (c *conn) LocalPeer() peer.ID            { return c.localPeer }
func (c *conn) RemotePeer() peer.ID           { return c.remotePeer }
func (c *conn) RemotePublicKey() ic.PubKey    { return c.remoteKey }
func (c *conn) LocalMultiaddr() ma.Multiaddr  { return c.localAddr }
func (c *conn) RemoteMultiaddr() ma.Multiaddr { return c.remoteAddr }
func (c *conn) Transport() tpt.Transport      { return c.t }
func (c *conn) Scope() network.ConnScope      { return c.scope }

// ConnState names the transport ("quic-v1" or "qmux"); security and multiplexing are built
// in, so no security protocol or stream multiplexer was negotiated.
func (c *conn) ConnState() network.ConnectionState {
	return network.ConnectionState{Transport: c.t.kind.ConnTransport}
}
