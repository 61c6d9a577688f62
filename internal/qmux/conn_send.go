package qmux

// conn_send.go: the writer goroutine, which builds records and writes them.
//
// Everything that goes out is queued under mu and packed by one goroutine, the writer: our
// transport parameters (first, alone in their record when sent at 0.5-RTT), a QX_PING
// response owed, control frames (send.ctrl), then STREAM frames from the streams in
// send.queue, round robin, at most streamQuantum of one stream per turn. While the writer
// waits for a transport write, Writes and control frames accumulate; its next turn packs
// them all, up to recordsPerWrite full records per transport write.
//
// Invariants:
//   - Only the writer writes nc, and it holds mu only while packing, never during a write.
//   - Records go out in the order fillLocked packs them; a stream's data in offset order.
//   - A stream is in send.queue (its queued flag set) at most once, and only while it has
//     data or a FIN to send; one without flow-control credit leaves the queue until the
//     limit rises (conn_flow.go).
//   - Once the connection is closing, the only frames packed are our CONNECTION_CLOSE (if
//     any; closeSent then) and, if not sent yet, our transport parameters before it; then the
//     writer half-closes the transport and returns.

import (
	"sync"

	"github.com/peerwire/peerwire/internal/qmux/wire"
)

const (
	// recordPayload is the Frames size of the records we send: with a 2-byte Size it fills
	// one 16 KiB TLS record (the draft's default max_record_size).
	recordPayload = wire.DefaultMaxRecordSize
	// recordsPerWrite bounds how many records one transport write carries.
	recordsPerWrite = 8
	// streamQuantum is how much of one stream goes out before the next stream's turn.
	streamQuantum = 32 << 10
)

// sendState is what waits for the writer.
type sendState struct {
	wake       chan struct{} // wakes the writer (capacity 1)
	ctrl       []wire.Frame  // control frames, in order
	queue      []*stream     // streams with data or a FIN to send
	paramsSent bool
	closeSent  bool // our CONNECTION_CLOSE (or nothing, for a silent close) was packed
}

func (c *conn) signalWriter() { signal(c.send.wake) }

// queueStreamLocked puts s in the send queue and wakes the writer.
func (c *conn) queueStreamLocked(s *stream) {
	if !s.queued {
		s.queued = true
		c.send.queue = append(c.send.queue, s)
	}
	c.signalWriter()
}

// writeBuffers recycles the writer's record buffers between bursts, so that an idle
// connection holds none.
var writeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, recordsPerWrite*(recordPayload+2))
	return &b
}}

// writeLoop is the writer goroutine.
func (c *conn) writeLoop() {
	defer c.goroutineDone()
	for range c.send.wake {
		if !c.writeBurst() {
			return
		}
	}
}

// writeBurst writes until nothing is left to send. It reports false once the connection is
// finished: the transport failed, or our last records went out and it was half-closed.
func (c *conn) writeBurst() bool {
	pb := writeBuffers.Get().(*[]byte)
	defer writeBuffers.Put(pb)
	for {
		c.mu.Lock()
		buf := c.fillLocked((*pb)[:0])
		*pb = buf[:0]
		closing := c.closing.err != nil
		c.mu.Unlock()
		if len(buf) == 0 && !closing {
			return true
		}
		if len(buf) > 0 {
			if _, err := c.nc.Write(buf); err != nil {
				c.transportFailed(err)
				c.shutdown()
				return false
			}
		}
		if closing {
			c.shutdown()
			return false
		}
		c.mu.Lock()
		c.activityLocked(true)
		c.mu.Unlock()
	}
}

// fillLocked appends up to recordsPerWrite records of pending frames to buf.
func (c *conn) fillLocked(buf []byte) []byte {
	if c.closing.err != nil && c.send.closeSent {
		return buf
	}
	for range recordsPerWrite {
		var start int
		buf, start = wire.BeginRecord(buf, 2)
		room := func() int { return wire.RecordRoom(buf, start, recordPayload) }
		if !c.send.paramsSent {
			buf = (&wire.TransportParametersFrame{Params: c.local}).Append(buf)
			c.send.paramsSent = true
			// Sent at 0.5-RTT already (halfrtt.go): R0 carried this record alone, and the TLS
			// layer must get it the same way, to recognise and drop it: in a write of its
			// own, or, when closing, followed by the CONNECTION_CLOSE's record.
			if halfRTT(c.client, c.cfg) {
				buf = wire.EndRecord(buf, start)
				if c.closing.err == nil {
					return buf
				}
				buf, start = wire.BeginRecord(buf, 2)
			}
		}
		if c.idle.pingOwed && c.closing.err == nil && room() >= 17 {
			buf = (&wire.PingFrame{Response: true, Sequence: c.idle.peerPing}).Append(buf)
			c.idle.pingOwed = false
		}
		for len(c.send.ctrl) > 0 && c.send.ctrl[0].Length() <= room() {
			buf = c.send.ctrl[0].Append(buf)
			c.send.ctrl[0] = nil
			c.send.ctrl = c.send.ctrl[1:]
		}
		if c.closing.err != nil {
			c.send.closeSent = true
			return wire.EndRecord(buf, start)
		}
		if c.gotParams {
			buf = c.fillStreamsLocked(buf, start)
		}
		before := len(buf)
		buf = wire.EndRecord(buf, start)
		if len(buf) < before || len(c.send.queue) == 0 && len(c.send.ctrl) == 0 {
			break // an empty record (dropped), or nothing left
		}
	}
	return buf
}

// fillStreamsLocked appends STREAM frames to the record that started at start, serving the
// send queue round robin.
func (c *conn) fillStreamsLocked(buf []byte, start int) []byte {
	for len(c.send.queue) > 0 {
		room := wire.RecordRoom(buf, start, recordPayload)
		if room < 32 {
			return buf
		}
		s := c.send.queue[0]
		f := wire.StreamFrame{StreamID: s.id, Offset: s.sendOff, HasLength: true}
		avail := uint64(len(s.pending))
		n := min(avail, s.sendMax-s.sendOff, c.flow.sendMax-c.flow.sent, streamQuantum)
		n = min(n, uint64(f.MaxDataLen(room)))
		fin := s.finQueued && !s.finSent && n == avail && !s.resetSent
		if s.resetSent || (n == 0 && !fin) {
			c.dequeueLocked()
			if !s.resetSent && avail > 0 {
				c.blockedLocked(s)
			}
			continue
		}
		f.Data = s.pending[:n]
		f.Fin = fin
		buf = f.Append(buf)
		s.pending = s.pending[n:]
		s.sendOff += n
		c.flow.sent += n
		if s.wWaiting {
			signal(s.wSignal) // room in its send buffer
		}
		if fin {
			s.finSent = true
			s.releaseSendLocked()
			c.streamMaybeDoneLocked(s)
		}
		c.dequeueLocked()
		if len(s.pending) > 0 {
			c.queueStreamLocked(s) // back of the queue: the next stream's turn
		}
	}
	return buf
}

func (c *conn) dequeueLocked() {
	q := c.send.queue
	q[0].queued = false
	// Shift rather than reslice, so that the queue keeps its array.
	n := copy(q, q[1:])
	q[n] = nil
	c.send.queue = q[:n]
}
