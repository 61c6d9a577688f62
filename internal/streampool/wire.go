package streampool

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go/quicvarint"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
)

// StreamType is the QUIC variable-length integer at the start of every stream a pool opens.
// Both types defined here are below 64 and so take one byte on the wire.
type StreamType uint64

const (
	// StreamMessages is a stream of framed messages: 4-byte big-endian length, payload,
	// repeated until the stream's end.
	StreamMessages StreamType = 0x00 // then [len][payload]...
	// StreamControl is a stream carrying one ControlCode, then the stream's end.
	StreamControl StreamType = 0x01 // then 1 byte ControlCode, FIN
)

// ControlCode is the one byte a control stream carries.
type ControlCode byte

const (
	// ControlAccepted goes from listener to dialer: the listener's application accepted the
	// connection (nettransport's IncomingRequest.Accept sends it; its Dial waits for it).
	ControlAccepted ControlCode = 0x01
	// ControlDrainRequest asks the peer to answer once it has read to its end every stream
	// that arrived before this one (Drain).
	ControlDrainRequest ControlCode = 0x02
	// ControlDrainDone is the answer to a drain request.
	ControlDrainDone ControlCode = 0x03
)

// readStream reads one inbound stream to its end: its type, then its messages or its control
// code.
func (p *Pool) readStream(rs session.ReceiveStream) {
	defer p.streamDone(rs)
	r := framing.NewReader(rs, p.cfg.maxMessage())
	typ, err := quicvarint.Read(r)
	switch {
	case err != nil:
		p.readFailed(rs, err)
	case StreamType(typ) == StreamMessages:
		p.readMessages(rs, r)
	case StreamType(typ) == StreamControl:
		p.readControl(rs, r)
	default:
		rs.CancelRead(CodeUnknownStream)
	}
}

// readFailed stops a stream whose read failed other than at its end or by the peer's reset.
func (p *Pool) readFailed(rs session.ReceiveStream, err error) {
	if !errors.Is(err, io.EOF) {
		rs.CancelRead(CodePoolClosed)
	}
}

// readControl handles a control stream: its one code, once the stream's end confirms that
// nothing follows it.
func (p *Pool) readControl(rs session.ReceiveStream, r *framing.Reader) {
	code, err := r.ReadByte()
	if err != nil {
		p.readFailed(rs, err) // an empty control stream carries nothing to act on
		return
	}
	switch ControlCode(code) {
	case ControlAccepted, ControlDrainRequest, ControlDrainDone:
	default:
		rs.CancelRead(CodeUnknownStream)
		return
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			rs.CancelRead(CodeBadControl)
		} else {
			p.readFailed(rs, err)
		}
		return
	}
	switch ControlCode(code) {
	case ControlAccepted:
		p.accepted.fire()
	case ControlDrainRequest:
		p.drainRequested(rs)
	case ControlDrainDone:
		p.drained.fire()
	}
}

// sendControl opens a control stream carrying code and finishes it, within ctx and the
// stream timeout, or until the pool closes.
func (p *Pool) sendControl(ctx context.Context, code ControlCode) error {
	st, err := p.openStream(ctx)
	if err != nil {
		return err
	}
	_ = st.SetWriteDeadline(time.Now().Add(p.cfg.timeout()))
	if _, err := st.Write([]byte{byte(StreamControl), byte(code)}); err != nil {
		st.CancelWrite(CodeWriteFailed)
		return err
	}
	return st.Close()
}

// event is a one-time signal.
type event struct {
	once sync.Once
	ch   chan struct{}
}

func newEvent() *event { return &event{ch: make(chan struct{})} }

func (e *event) fire() { e.once.Do(func() { close(e.ch) }) }
