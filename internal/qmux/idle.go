package qmux

// idle.go: the idle timeout, keep-alives, and QX_PING (draft-02 §4.3, §6).
//
// Invariants:
//   - The idle timeout is the smaller of both sides' non-zero max_idle_timeout, at least
//     minIdleTimeout; it restarts when a record is received, and on the first send after a
//     receipt (RFC 9000 §10.1: our own keep-alives alone must not keep a connection to a
//     silent peer open). On expiry the connection closes silently (no CONNECTION_CLOSE).
//   - A keep-alive QX_PING goes out after keepAlive without receiving (at most half the
//     idle timeout); its response measures the round trip (rtt), which flow control's
//     window auto-tuning uses. Until then rtt is the handshake's duration (seedRTT), at
//     least 1 ms.
//   - Request sequence numbers we send strictly increase; a peer's request that does not
//     increase, or a response to a request never sent, is PROTOCOL_VIOLATION. Several
//     requests may be answered by one response with the largest (pingOwed, peerPing).
//   - The timers are lazy: activityLocked runs for every record and only records the time;
//     a timer that fires early re-arms itself for what remains (a Timer.Reset per record
//     would cost more than a small record).

import (
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// minIdleTimeout is the shortest idle timeout we enforce, whatever the peer advertises (a
// deployed stack advertises 30 ms).
const minIdleTimeout = time.Second

// idleState is the idle and keep-alive timers and the QX_PING exchange.
type idleState struct {
	timeout, keepAlive time.Duration // zero: disabled
	idleTimer          *time.Timer
	keepTimer          *time.Timer
	idleFrom, keepFrom time.Time // when the timers last restarted
	sentSinceRecv      bool      // a send restarted the idle timer since the last receipt

	pingSent, pingAcked uint64    // our requests: the last sent, the largest answered
	pingAt              time.Time // when the last request went out
	peerPing            uint64    // the peer's largest request
	gotPeerPing         bool
	pingOwed            bool          // a response to peerPing is owed (conn_send.go)
	rtt                 time.Duration // the last measured round trip
}

func (s *idleState) init() { s.rtt = time.Millisecond }

// seedRTT takes the TLS handshake's duration as the first round-trip estimate, until a
// QX_PING measures one: a full TLS 1.3 handshake takes one round trip plus the peers'
// computation, so its duration is an upper bound of the round trip. Without it the estimate
// stays at the 1 ms default until the first keep-alive is answered, and on a link with a
// longer round trip the flow-control windows (conn_flow.go) hardly grow. The 1 ms default
// stays the floor.
func (c *conn) seedRTT(handshake time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle.pingAcked == 0 {
		c.idle.rtt = max(c.idle.rtt, handshake)
	}
}

// startTimersLocked starts the idle and keep-alive timers once the peer's parameters arrived.
func (c *conn) startTimersLocked(peerIdle time.Duration) {
	s := &c.idle
	idle := c.local.MaxIdleTimeout
	if peerIdle > 0 && (idle == 0 || peerIdle < idle) {
		idle = peerIdle
	}
	now := time.Now()
	if idle > 0 {
		s.timeout = max(idle, minIdleTimeout)
		s.idleFrom = now
		s.idleTimer = time.AfterFunc(s.timeout, c.onIdle)
	}
	if ka := c.cfg.KeepAlive(); ka > 0 {
		if s.timeout > 0 {
			ka = min(ka, s.timeout/2)
		}
		s.keepAlive = ka
		s.keepFrom = now
		s.keepTimer = time.AfterFunc(ka, c.onKeepAlive)
	}
}

// stopTimersLocked stops both timers: the connection is closing.
func (c *conn) stopTimersLocked() {
	if c.idle.idleTimer != nil {
		c.idle.idleTimer.Stop()
	}
	if c.idle.keepTimer != nil {
		c.idle.keepTimer.Stop()
	}
}

// activityLocked records that a record was received or sent (see the invariants).
func (c *conn) activityLocked(sent bool) {
	s := &c.idle
	if c.closing.err != nil {
		return
	}
	if sent {
		if s.sentSinceRecv {
			return
		}
		s.sentSinceRecv = true
	} else {
		s.sentSinceRecv = false
	}
	if s.idleTimer == nil && s.keepTimer == nil {
		return
	}
	now := time.Now()
	s.idleFrom = now
	if !sent {
		s.keepFrom = now
	}
}

func (c *conn) onIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.err != nil {
		return
	}
	if left := c.idle.timeout - time.Since(c.idle.idleFrom); left > 0 {
		c.idle.idleTimer.Reset(left)
		return
	}
	c.closeLocked(&session.CloseError{Kind: session.ClosedByIdleTimeout}, nil)
}

func (c *conn) onKeepAlive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.idle
	if c.closing.err != nil {
		return
	}
	if left := s.keepAlive - time.Since(s.keepFrom); left > 0 {
		s.keepTimer.Reset(left)
		return
	}
	s.pingSent++
	s.pingAt = time.Now()
	s.keepFrom = s.pingAt
	c.send.ctrl = append(c.send.ctrl, &wire.PingFrame{Sequence: s.pingSent})
	c.signalWriter()
	s.keepTimer.Reset(s.keepAlive)
}

func (c *conn) handlePingLocked(f *wire.PingFrame) {
	s := &c.idle
	if f.Response {
		if f.Sequence > s.pingSent {
			c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), "QX_PING response to a request never sent")
			return
		}
		if f.Sequence == s.pingSent && f.Sequence > s.pingAcked {
			s.rtt = max(time.Since(s.pingAt), 100*time.Microsecond)
		}
		s.pingAcked = max(s.pingAcked, f.Sequence)
		return
	}
	if s.gotPeerPing && f.Sequence <= s.peerPing {
		c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), "QX_PING request sequence did not increase")
		return
	}
	s.peerPing, s.gotPeerPing = f.Sequence, true
	if !s.pingOwed {
		s.pingOwed = true
		c.signalWriter()
	}
}
