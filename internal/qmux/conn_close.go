package qmux

// conn_close.go: how a connection ends (draft-02 §6).
//
// A connection ends once, for the first of: CloseWithError (our CONNECTION_CLOSE with an
// application code), a protocol error of the peer's (our CONNECTION_CLOSE with a transport
// code), the peer's CONNECTION_CLOSE, the idle timeout, or the transport failing or ending.
// closeLocked records why (closing.err, the cause of ctx), fails every waiter, and hands the
// rest to the writer: it sends our CONNECTION_CLOSE, if any, half-closes the transport (TLS
// close_notify and TCP FIN), and waits, at most closeLinger, for the reader to see the
// peer's half-close before closing the transport (closing at once could make TCP reset the
// connection and lose our CONNECTION_CLOSE).
//
// Invariants:
//   - closing.err, once set, never changes; every operation on the connection or its streams
//     then fails with it (a *session.CloseError).
//   - After closeLocked nothing but our CONNECTION_CLOSE is packed (conn_send.go), and what
//     arrives is discarded (conn_recv.go).
//   - The writer may take at most closeLinger to send our CONNECTION_CLOSE to a peer that
//     does not read (a write deadline), and no time at all for a silent close.

import (
	"crypto/tls"
	"errors"
	"io"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

const (
	// closeLinger bounds the wait for the peer's half-close after we closed.
	closeLinger = 2 * time.Second
	// maxReason bounds the reason phrase we send, so that a CONNECTION_CLOSE fits a record.
	maxReason = 1024
)

// closeState is why the connection ended, once it did.
type closeState struct {
	err error // a *session.CloseError
}

// CloseWithError implements session.Conn: our CONNECTION_CLOSE with an application code.
func (c *conn) CloseWithError(code session.ApplicationErrorCode, reason string) error {
	reason = truncate(reason)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(&session.CloseError{Kind: session.ClosedByApplication, Code: uint64(code), Reason: reason},
		&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: uint64(code), Reason: []byte(reason)})
	return nil
}

func truncate(reason string) string {
	if len(reason) > maxReason {
		return reason[:maxReason]
	}
	return reason
}

// closeLocked starts closing, once: streams and waiters fail with err; frame (our
// CONNECTION_CLOSE, or nil when the peer closed, the idle timer fired or the transport
// failed) is the last thing the writer sends before half-closing the transport.
func (c *conn) closeLocked(err *session.CloseError, frame wire.Frame) {
	if c.closing.err != nil {
		return
	}
	c.closing.err = err
	c.send.ctrl = c.send.ctrl[:0]
	if frame != nil {
		c.send.ctrl = append(c.send.ctrl, frame)
	}
	c.send.queue = nil
	for _, s := range c.streams.m {
		signal(s.wSignal)
		signal(s.rSignal)
	}
	signal(c.streams.acceptSig[0])
	signal(c.streams.acceptSig[1])
	close(c.streams.openWait)
	c.streams.openWait = make(chan struct{})
	c.stopTimersLocked()
	c.cancel(err)
	if frame != nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeLinger))
	} else {
		_ = c.nc.SetWriteDeadline(time.Now())
	}
	c.signalWriter()
}

// protocolErrorLocked closes the connection because the peer broke the protocol.
func (c *conn) protocolErrorLocked(code wire.TransportErrorCode, ft wire.FrameType, reason string) {
	reason = truncate(reason)
	c.closeLocked(&session.CloseError{Kind: session.ClosedByTransportError, Code: uint64(code), Reason: reason},
		&wire.ConnectionCloseFrame{ErrorCode: uint64(code), FrameType: uint64(ft), Reason: []byte(reason)})
}

// transportFailed ends the connection after the byte stream failed or ended without
// CONNECTION_CLOSE. A TLS certificate alert from the peer is its refusal of our certificate
// (possible after our handshake completed, TLS 1.3 clients finish first): the close error
// then carries a *certs.RejectedByPeerError.
func (c *conn) transportFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.err != nil {
		return
	}
	ce := &session.CloseError{Kind: session.ClosedByNetwork, Err: err}
	if alert, ok := certs.PeerAlert(err); ok && certs.IsCertificateAlert(alert) {
		ce.Remote = true
		ce.Err = certs.NewRejectedByPeerError(c.cfg.Credential, c.state.RemoteAddr, alert, err)
	} else if errors.Is(err, io.EOF) {
		ce.Remote = true
		ce.Err = errors.New("peer closed the transport without CONNECTION_CLOSE")
	}
	c.closeLocked(ce, nil)
}

// shutdown half-closes the transport after the last records, waits (at most closeLinger)
// for the reader to see the peer's half-close, then closes the transport. The writer calls
// it last.
func (c *conn) shutdown() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // TLS: close_notify
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		if cw, ok := tc.NetConn().(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // TCP FIN: the half-close the draft's close procedure asks for
		}
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(closeLinger))
	<-c.recv.done
	_ = c.nc.Close()
}
