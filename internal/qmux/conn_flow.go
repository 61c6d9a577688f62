package qmux

// conn_flow.go: flow control (RFC 9000 §4), connection-level and the per-stream credit
// updates.
//
// Invariants:
//   - Sending: flow.sent <= flow.sendMax, and a stream's sendOff <= its sendMax; the writer
//     (fillStreamsLocked) never packs data beyond either. A stream that has data but no
//     credit is remembered (flow.blocked, or by its own limit) and queued again when the
//     peer's MAX_DATA or MAX_STREAM_DATA raises the limit.
//   - Receiving: flow.recvd (bytes the peer sent, or counted by a reset's final size) never
//     exceeds flow.recvMax; a peer that exceeds it, or a stream's recvMax, is closed with
//     FLOW_CONTROL_ERROR (conn_recv.go).
//   - Credit is returned as the application reads (or discards) data: a limit is raised once
//     half its window is used, and the window doubles (up to the configured maximum) when
//     updates come faster than every four round trips (auto-tuning).

import (
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
)

// Initial flow-control windows; they grow up to session.Config's maxima.
const (
	initialStreamWindow = 512 << 10
	initialConnWindow   = 1 << 20
)

// flowState is the connection-level flow control, both directions.
type flowState struct {
	// Sending: the peer's limit, what we sent, the limit at which we last sent
	// DATA_BLOCKED, and the streams waiting for MAX_DATA.
	sendMax, sent uint64
	dataBlockedAt uint64
	blocked       []*stream

	// Receiving: our limit, what the peer sent, what the application consumed, the window
	// and when we last raised the limit.
	recvMax, recvd, readTotal uint64
	window                    uint64
	lastUpdate                time.Time
}

func (f *flowState) init(local *wire.TransportParameters) {
	f.window = local.InitialMaxData
	f.recvMax = local.InitialMaxData
}

// handleMaxDataLocked raises the connection's send limit and requeues the streams it held.
func (c *conn) handleMaxDataLocked(f *wire.MaxDataFrame) {
	if f.MaximumData <= c.flow.sendMax {
		return
	}
	c.flow.sendMax = f.MaximumData
	for _, s := range c.flow.blocked {
		c.queueStreamLocked(s)
	}
	c.flow.blocked = c.flow.blocked[:0]
}

// handleMaxStreamDataLocked raises a stream's send limit.
func (c *conn) handleMaxStreamDataLocked(f *wire.MaxStreamDataFrame) {
	s, ok := c.sendStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil || f.MaximumStreamData <= s.sendMax {
		return
	}
	s.sendMax = f.MaximumStreamData
	if len(s.pending) > 0 || (s.finQueued && !s.finSent) {
		c.queueStreamLocked(s)
	}
}

// blockedLocked records that s has data it cannot send: STREAM_DATA_BLOCKED or DATA_BLOCKED,
// once per limit; the stream is queued again when the limit rises.
func (c *conn) blockedLocked(s *stream) {
	if s.sendOff >= s.sendMax {
		if s.blockedAt != s.sendMax || s.sendMax == 0 && s.blockedAt == 0 {
			s.blockedAt = s.sendMax
			c.send.ctrl = append(c.send.ctrl, &wire.StreamDataBlockedFrame{StreamID: s.id, MaximumStreamData: s.sendMax})
		}
		return
	}
	if c.flow.sent >= c.flow.sendMax {
		if c.flow.dataBlockedAt != c.flow.sendMax {
			c.flow.dataBlockedAt = c.flow.sendMax
			c.send.ctrl = append(c.send.ctrl, &wire.DataBlockedFrame{MaximumData: c.flow.sendMax})
		}
		c.flow.blocked = append(c.flow.blocked, s)
	}
}

// consumedLocked records that the application read n bytes of s, and raises the stream's
// limit (MAX_STREAM_DATA) when half its window is used.
func (c *conn) consumedLocked(s *stream, n uint64) {
	c.consumedConnLocked(n)
	if s.finKnown || s.recvErr != nil {
		return
	}
	if s.recvMax-s.readOff > s.window/2 {
		return
	}
	now := time.Now()
	if !s.lastUpdate.IsZero() && now.Sub(s.lastUpdate) < 4*c.idle.rtt {
		s.window = min(2*s.window, max(c.cfg.StreamWindow(), s.window))
	}
	s.lastUpdate = now
	s.recvMax = s.readOff + s.window
	c.send.ctrl = append(c.send.ctrl, &wire.MaxStreamDataFrame{StreamID: s.id, MaximumStreamData: s.recvMax})
	c.signalWriter()
}

// consumedConnLocked records n bytes consumed on the connection (read, discarded, or never
// sent before a reset), and raises its limit (MAX_DATA) when half the window is used.
func (c *conn) consumedConnLocked(n uint64) {
	if n == 0 {
		return
	}
	f := &c.flow
	f.readTotal += n
	if f.recvMax-f.readTotal > f.window/2 || c.closing.err != nil {
		return
	}
	now := time.Now()
	if !f.lastUpdate.IsZero() && now.Sub(f.lastUpdate) < 4*c.idle.rtt {
		f.window = min(2*f.window, max(c.cfg.ConnectionWindow(), f.window))
	}
	f.lastUpdate = now
	f.recvMax = f.readTotal + f.window
	c.send.ctrl = append(c.send.ctrl, &wire.MaxDataFrame{MaximumData: f.recvMax})
	c.signalWriter()
}
