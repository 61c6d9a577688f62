package qmux

// conn_recv.go: the reader goroutine, and what each frame the peer sends does.
//
// Invariants:
//   - recvState belongs to the reader goroutine: the record reader and the parser are used
//     without mu, and a record's frames are applied under one holding of mu, in order.
//   - The first frame is the peer's QX_TRANSPORT_PARAMETERS; nothing else is applied before
//     it (gotParams), and a second one is an error (draft-02 §4.2).
//   - The reader never waits for an application: STREAM data is copied into the stream's
//     receive buffer (bounded by our flow-control limits) and the stream's reader is woken.
//   - Once the connection is closing, what arrives is read and discarded until the peer's
//     half-close or the linger deadline (conn_close.go), so that closing does not reset TCP.

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// recvState is the reader goroutine's: see the invariants above.
type recvState struct {
	rr     *wire.RecordReader
	parser wire.Parser
	done   chan struct{} // closed when the reader returns
}

func (r *recvState) init(nc net.Conn) {
	r.rr = wire.NewRecordReader(nc, wire.DefaultMaxRecordSize)
	r.done = make(chan struct{})
}

// readLoop is the reader goroutine: it reads records until the transport ends.
func (c *conn) readLoop() {
	defer c.goroutineDone()
	defer close(c.recv.done)
	for {
		rec, err := c.recv.rr.Next()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.handleRecord(rec)
	}
}

// handleRecord applies a record's frames.
func (c *conn) handleRecord(rec []byte) {
	c.mu.Lock()
	if c.closing.err != nil {
		c.mu.Unlock()
		return // closing: discarded
	}
	for len(rec) > 0 && c.closing.err == nil {
		f, n, err := c.recv.parser.ParseNext(rec)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				we = &wire.Error{Code: wire.FrameEncodingError, Reason: err.Error()}
			}
			c.protocolErrorLocked(we.Code, wire.FrameType(we.FrameType), we.Reason)
			break
		}
		rec = rec[n:]
		c.handleFrameLocked(f)
	}
	if c.gotParams && !c.paramsSeen {
		// Only now that the whole record was applied: a Dial waiting for the parameters
		// also sees a CONNECTION_CLOSE that came with them.
		c.paramsSeen = true
		close(c.params)
	}
	c.activityLocked(false)
	c.mu.Unlock()
	c.notifyCapacity()
}

// readFailed ends reading after err: a record-level protocol error (a *wire.Error) closes
// the connection with its code, anything else is the transport's end.
func (c *conn) readFailed(err error) {
	var we *wire.Error
	if errors.As(err, &we) {
		c.mu.Lock()
		c.protocolErrorLocked(we.Code, wire.FrameType(we.FrameType), we.Reason)
		c.mu.Unlock()
		// Discard what arrives until the peer half-closes (bounded by shutdown's read
		// deadline): closing with unread data would reset the TCP connection and could lose
		// our CONNECTION_CLOSE.
		_, _ = io.Copy(io.Discard, c.nc)
	} else {
		c.transportFailed(err)
	}
	c.mu.Lock()
	c.signalWriter() // the writer finishes, then the transport closes
	c.mu.Unlock()
}

func (c *conn) handleFrameLocked(f wire.Frame) {
	if !c.gotParams {
		tp, ok := f.(*wire.TransportParametersFrame)
		if !ok {
			c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), "first frame is not QX_TRANSPORT_PARAMETERS")
			return
		}
		c.applyParamsLocked(&tp.Params)
		return
	}
	switch f := f.(type) {
	case *wire.PaddingFrame:
	case *wire.StreamFrame:
		c.handleStreamLocked(f)
	case *wire.ResetStreamFrame:
		c.handleResetLocked(f)
	case *wire.StopSendingFrame:
		c.handleStopSendingLocked(f)
	case *wire.MaxDataFrame:
		c.handleMaxDataLocked(f)
	case *wire.MaxStreamDataFrame:
		c.handleMaxStreamDataLocked(f)
	case *wire.MaxStreamsFrame:
		dir := dirUni
		if f.Bidi {
			dir = dirBidi
		}
		c.raiseLimitLocked(dir, f.MaximumStreams)
	case *wire.DataBlockedFrame, *wire.StreamDataBlockedFrame, *wire.StreamsBlockedFrame:
		// Informational: our updates are driven by the application's reads.
	case *wire.ConnectionCloseFrame:
		c.handleConnectionCloseLocked(f)
	case *wire.TransportParametersFrame:
		c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), "QX_TRANSPORT_PARAMETERS repeated")
	case *wire.PingFrame:
		c.handlePingLocked(f)
	default:
		c.protocolErrorLocked(wire.FrameEncodingError, f.Type(), "unexpected frame")
	}
}

func (c *conn) applyParamsLocked(p *wire.TransportParameters) {
	c.peer = *p
	c.gotParams = true
	c.flow.sendMax = p.InitialMaxData
	c.raiseLimitLocked(dirBidi, p.InitialMaxStreamsBidi)
	c.raiseLimitLocked(dirUni, p.InitialMaxStreamsUni)
	c.startTimersLocked(p.MaxIdleTimeout)
	c.signalWriter()
}

// handleConnectionCloseLocked ends the connection as the peer asked. (A close with
// session.CodeRejected, the listener's Incoming.Reject, matches session.ErrRejected.)
func (c *conn) handleConnectionCloseLocked(f *wire.ConnectionCloseFrame) {
	ce := &session.CloseError{Kind: session.ClosedByTransportError, Code: f.ErrorCode, Reason: string(f.Reason), Remote: true}
	if f.IsApplication {
		ce.Kind = session.ClosedByApplication
	}
	c.closeLocked(ce, nil)
}

// handleStreamLocked takes a STREAM frame: its data is copied into the stream's receive
// buffer, within our flow-control limits.
func (c *conn) handleStreamLocked(f *wire.StreamFrame) {
	s, ok := c.recvStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil {
		return
	}
	end := f.Offset + uint64(len(f.Data))
	if f.Offset != s.recvOff {
		if s.recvErr != nil && s.finKnown {
			return // reset already; late data is ignored
		}
		c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), fmt.Sprintf("stream %d data at offset %d, expected %d", s.id, f.Offset, s.recvOff))
		return
	}
	if s.finKnown && (end > s.finalSize || (f.Fin && end != s.finalSize)) {
		c.protocolErrorLocked(wire.FinalSizeError, f.Type(), fmt.Sprintf("stream %d data beyond its final size", s.id))
		return
	}
	if end > s.recvMax {
		c.protocolErrorLocked(wire.FlowControlError, f.Type(), fmt.Sprintf("stream %d exceeded its flow-control limit", s.id))
		return
	}
	n := uint64(len(f.Data))
	if c.flow.recvd+n > c.flow.recvMax {
		c.protocolErrorLocked(wire.FlowControlError, f.Type(), "connection flow-control limit exceeded")
		return
	}
	c.flow.recvd += n
	s.recvOff = end
	if f.Fin {
		s.finKnown, s.finalSize = true, end
	}
	if s.recvErr != nil {
		// The application stopped reading: discard, returning the credit.
		s.readOff += n
		c.consumedConnLocked(n)
	} else {
		s.appendData(f.Data)
	}
	signal(s.rSignal)
	c.streamMaybeDoneLocked(s)
}

func (c *conn) handleResetLocked(f *wire.ResetStreamFrame) {
	s, ok := c.recvStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil {
		return
	}
	if (s.finKnown && f.FinalSize != s.finalSize) || f.FinalSize < s.recvOff {
		c.protocolErrorLocked(wire.FinalSizeError, f.Type(), fmt.Sprintf("stream %d reset with final size %d", s.id, f.FinalSize))
		return
	}
	if f.FinalSize > s.recvMax || c.flow.recvd+(f.FinalSize-s.recvOff) > c.flow.recvMax {
		c.protocolErrorLocked(wire.FlowControlError, f.Type(), "reset final size exceeds flow control")
		return
	}
	// Bytes never sent still count against the connection's flow control (RFC 9000 §4.5).
	unsent := f.FinalSize - s.recvOff
	c.flow.recvd += unsent
	s.recvOff = f.FinalSize
	s.finKnown, s.finalSize = true, f.FinalSize
	if s.recvErr == nil {
		s.recvErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(f.ErrorCode), Remote: true}
		s.dropChunksLocked()
	}
	s.readOff += unsent
	c.consumedConnLocked(unsent)
	signal(s.rSignal)
	c.streamMaybeDoneLocked(s)
}

func (c *conn) handleStopSendingLocked(f *wire.StopSendingFrame) {
	s, ok := c.sendStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil {
		return
	}
	if s.finSent || s.resetSent {
		return
	}
	// Answer with RESET_STREAM carrying the same code (RFC 9000 §3.5).
	s.sendErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(f.ErrorCode), Remote: true}
	c.resetLocked(s, f.ErrorCode)
}
