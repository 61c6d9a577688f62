package wire

import (
	"fmt"
	"math"
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// Transport parameter IDs QMux uses (RFC 9000 §18.2, RFC 9221 §3,
// draft-ietf-quic-reliable-stream-reset §3, draft-ietf-quic-qmux-02 §5.2).
const (
	paramMaxIdleTimeout                 = 0x01
	paramInitialMaxData                 = 0x04
	paramInitialMaxStreamDataBidiLocal  = 0x05
	paramInitialMaxStreamDataBidiRemote = 0x06
	paramInitialMaxStreamDataUni        = 0x07
	paramInitialMaxStreamsBidi          = 0x08
	paramInitialMaxStreamsUni           = 0x09
	paramResetStreamAt                  = 0x1d // empty value
	paramMaxDatagramFrameSize           = 0x20
	paramMaxRecordSize                  = 0x0571c59429cd0845
)

// maxIdleTimeoutMillis is the largest max_idle_timeout a time.Duration holds;
// larger values are read as this, which is "never" in practice.
const maxIdleTimeoutMillis = math.MaxInt64 / int64(time.Millisecond)

// TransportParameters are the transport parameters QMux permits
// (draft-ietf-quic-qmux-02 §5). The zero value of each field is its default
// when the parameter is absent (RFC 9000 §18.2), except MaxRecordSize, whose
// default is DefaultMaxRecordSize; Parse fills that in.
type TransportParameters struct {
	// MaxIdleTimeout is max_idle_timeout (0x01), sent in whole milliseconds
	// (rounded down, but at least 1ms). Zero (the default) means the endpoint
	// has no idle timeout. Values beyond what a Duration holds are read as the
	// largest whole-millisecond Duration.
	MaxIdleTimeout time.Duration
	// InitialMaxData is initial_max_data (0x04). Default 0.
	InitialMaxData uint64
	// InitialMaxStreamDataBidiLocal is initial_max_stream_data_bidi_local
	// (0x05): the limit for bidirectional streams the sender opens. Default 0.
	InitialMaxStreamDataBidiLocal uint64
	// InitialMaxStreamDataBidiRemote is initial_max_stream_data_bidi_remote
	// (0x06): the limit for bidirectional streams its peer opens. Default 0.
	InitialMaxStreamDataBidiRemote uint64
	// InitialMaxStreamDataUni is initial_max_stream_data_uni (0x07). Default 0.
	InitialMaxStreamDataUni uint64
	// InitialMaxStreamsBidi is initial_max_streams_bidi (0x08), at most 2^60.
	// Default 0.
	InitialMaxStreamsBidi uint64
	// InitialMaxStreamsUni is initial_max_streams_uni (0x09), at most 2^60.
	// Default 0.
	InitialMaxStreamsUni uint64
	// MaxRecordSize is max_record_size (0x0571c59429cd0845): the largest
	// record Size the sender accepts. At least DefaultMaxRecordSize, which is
	// also its default; Append omits it at that value. A zero value in a
	// struct built by hand is treated as the default.
	MaxRecordSize uint64
	// MaxDatagramFrameSize is max_datagram_frame_size (0x20, RFC 9221): the
	// largest DATAGRAM frame the sender accepts. Zero (the default) means
	// DATAGRAM frames are not supported.
	MaxDatagramFrameSize uint64
	// ResetStreamAt is reset_stream_at (0x1d, draft-ietf-quic-reliable-
	// stream-reset): whether the sender accepts RESET_STREAM_AT frames.
	// Default false.
	ResetStreamAt bool
}

// Validate reports whether p can be sent: the values a receiver would reject
// or that cannot be encoded are errors.
func (p *TransportParameters) Validate() error {
	switch {
	case p.MaxIdleTimeout < 0:
		return fmt.Errorf("qmux: negative max_idle_timeout %s", p.MaxIdleTimeout)
	case p.InitialMaxStreamsBidi > maxStreamCount || p.InitialMaxStreamsUni > maxStreamCount:
		return fmt.Errorf("qmux: initial_max_streams above 2^60")
	case p.MaxRecordSize != 0 && p.MaxRecordSize < DefaultMaxRecordSize:
		return fmt.Errorf("qmux: max_record_size %d below %d", p.MaxRecordSize, DefaultMaxRecordSize)
	}
	for _, v := range [...]uint64{p.InitialMaxData, p.InitialMaxStreamDataBidiLocal,
		p.InitialMaxStreamDataBidiRemote, p.InitialMaxStreamDataUni, p.MaxRecordSize, p.MaxDatagramFrameSize} {
		if v > quicvarint.Max {
			return fmt.Errorf("qmux: transport parameter value %d above 2^62-1", v)
		}
	}
	return nil
}

// idleTimeoutMillis rounds MaxIdleTimeout down to milliseconds, except that
// a positive timeout below 1ms becomes 1ms rather than 0 ("no timeout").
func (p *TransportParameters) idleTimeoutMillis() uint64 {
	if p.MaxIdleTimeout <= 0 {
		return 0
	}
	return max(uint64(p.MaxIdleTimeout/time.Millisecond), 1)
}

// Length returns the number of bytes Append appends.
func (p *TransportParameters) Length() int {
	n := 0
	for _, e := range p.entries() {
		if e.present {
			n += vlen(e.id) + vlen(uint64(e.len())) + e.len()
		}
	}
	return n
}

// Append appends the encoded parameter list (RFC 9000 §18): each parameter
// with a non-default value, as ID, length, value, in ascending ID order. It
// panics on values that cannot be encoded; Validate finds them.
func (p *TransportParameters) Append(b []byte) []byte {
	for _, e := range p.entries() {
		if !e.present {
			continue
		}
		b = quicvarint.Append(b, e.id)
		b = quicvarint.Append(b, uint64(e.len()))
		if !e.empty {
			b = quicvarint.Append(b, e.v)
		}
	}
	return b
}

type paramEntry struct {
	id, v   uint64
	present bool
	empty   bool // a flag parameter: present with a zero-length value
}

func (e *paramEntry) len() int {
	if e.empty {
		return 0
	}
	return vlen(e.v)
}

// entries lists the parameters Append may send, in ascending ID order,
// marking those that differ from their defaults as present.
func (p *TransportParameters) entries() [10]paramEntry {
	idle := p.idleTimeoutMillis()
	return [10]paramEntry{
		{id: paramMaxIdleTimeout, v: idle, present: idle != 0},
		{id: paramInitialMaxData, v: p.InitialMaxData, present: p.InitialMaxData != 0},
		{id: paramInitialMaxStreamDataBidiLocal, v: p.InitialMaxStreamDataBidiLocal, present: p.InitialMaxStreamDataBidiLocal != 0},
		{id: paramInitialMaxStreamDataBidiRemote, v: p.InitialMaxStreamDataBidiRemote, present: p.InitialMaxStreamDataBidiRemote != 0},
		{id: paramInitialMaxStreamDataUni, v: p.InitialMaxStreamDataUni, present: p.InitialMaxStreamDataUni != 0},
		{id: paramInitialMaxStreamsBidi, v: p.InitialMaxStreamsBidi, present: p.InitialMaxStreamsBidi != 0},
		{id: paramInitialMaxStreamsUni, v: p.InitialMaxStreamsUni, present: p.InitialMaxStreamsUni != 0},
		{id: paramResetStreamAt, present: p.ResetStreamAt, empty: true},
		{id: paramMaxDatagramFrameSize, v: p.MaxDatagramFrameSize, present: p.MaxDatagramFrameSize != 0},
		{id: paramMaxRecordSize, v: p.MaxRecordSize, present: p.MaxRecordSize > DefaultMaxRecordSize},
	}
}

// Parse decodes a parameter list (the body of a QX_TRANSPORT_PARAMETERS frame)
// into p, replacing its contents; absent parameters take their defaults.
// Unknown and GREASE (31*N+27) parameters are ignored. Every error is an
// *Error with code TRANSPORT_PARAMETER_ERROR; p is then partly filled in and
// must not be used.
func (p *TransportParameters) Parse(b []byte) error {
	*p = TransportParameters{MaxRecordSize: DefaultMaxRecordSize}
	var seen seenParams
	for len(b) > 0 {
		id, n, err := quicvarint.Parse(b)
		if err != nil {
			return tpError("parameter ID truncated")
		}
		b = b[n:]
		l, n, err := quicvarint.Parse(b)
		if err != nil {
			return tpError(fmt.Sprintf("length of parameter 0x%x truncated", id))
		}
		b = b[n:]
		if l > uint64(len(b)) {
			return tpError(fmt.Sprintf("value of parameter 0x%x truncated", id))
		}
		val := b[:l]
		b = b[l:]
		if seen.add(id) {
			// RFC 9000 §7.4.1/§18: "An endpoint SHOULD treat receipt of
			// duplicate transport parameters as a connection error of type
			// TRANSPORT_PARAMETER_ERROR."
			return tpError(fmt.Sprintf("duplicate parameter 0x%x", id))
		}
		if err := p.set(id, val); err != nil {
			return err
		}
	}
	return nil
}

func (p *TransportParameters) set(id uint64, val []byte) error {
	switch id {
	case 0x00, 0x02, 0x03, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10:
		// qmux-02 §5.1: "Use of other transport parameters defined in
		// [QUIC] is prohibited. When an endpoint receives one of the
		// prohibited transport parameters, the endpoint MUST close the
		// connection with an error of type TRANSPORT_PARAMETER_ERROR."
		return tpError(fmt.Sprintf("parameter 0x%x prohibited in QMux", id))
	case paramResetStreamAt:
		// reliable-stream-reset §3: "An implementation that understands this
		// transport parameter MUST treat the receipt of a non-empty value as
		// a connection error of type TRANSPORT_PARAMETER_ERROR."
		if len(val) != 0 {
			return tpError("reset_stream_at with a non-empty value")
		}
		p.ResetStreamAt = true
		return nil
	case paramMaxIdleTimeout, paramInitialMaxData, paramInitialMaxStreamDataBidiLocal,
		paramInitialMaxStreamDataBidiRemote, paramInitialMaxStreamDataUni,
		paramInitialMaxStreamsBidi, paramInitialMaxStreamsUni,
		paramMaxDatagramFrameSize, paramMaxRecordSize:
	default:
		return nil // unknown or GREASE: ignored (qmux-02 §5.1, RFC 9000 §18.1)
	}
	v, n, err := quicvarint.Parse(val)
	if err != nil || n != len(val) {
		// RFC 9000 §7.4: a parameter with an invalid value is a
		// TRANSPORT_PARAMETER_ERROR; a length that disagrees with its
		// varint is one.
		return tpError(fmt.Sprintf("parameter 0x%x: value length %d does not hold one varint", id, len(val)))
	}
	switch id {
	case paramMaxIdleTimeout:
		p.MaxIdleTimeout = time.Duration(min(v, uint64(maxIdleTimeoutMillis))) * time.Millisecond
	case paramInitialMaxData:
		p.InitialMaxData = v
	case paramInitialMaxStreamDataBidiLocal:
		p.InitialMaxStreamDataBidiLocal = v
	case paramInitialMaxStreamDataBidiRemote:
		p.InitialMaxStreamDataBidiRemote = v
	case paramInitialMaxStreamDataUni:
		p.InitialMaxStreamDataUni = v
	case paramInitialMaxStreamsBidi, paramInitialMaxStreamsUni:
		if v > maxStreamCount {
			// RFC 9000 §18.2 (initial_max_streams_*) via §4.6: "Receipt of
			// a ... value greater than 2^60 ... MUST be treated as a
			// connection error of type TRANSPORT_PARAMETER_ERROR".
			return tpError(fmt.Sprintf("parameter 0x%x: %d streams above 2^60", id, v))
		}
		if id == paramInitialMaxStreamsBidi {
			p.InitialMaxStreamsBidi = v
		} else {
			p.InitialMaxStreamsUni = v
		}
	case paramMaxDatagramFrameSize:
		p.MaxDatagramFrameSize = v
	case paramMaxRecordSize:
		if v < DefaultMaxRecordSize {
			// qmux-02 §5.2: "When receiving a value below the initial
			// value, receivers MUST close the connection with an error of
			// type TRANSPORT_PARAMETER_ERROR."
			return tpError(fmt.Sprintf("max_record_size %d below %d", v, DefaultMaxRecordSize))
		}
		p.MaxRecordSize = v
	}
	return nil
}

func tpError(reason string) error {
	return newError(TransportParameterError, FrameTypeTransportParameters, reason)
}

// seenParams detects duplicate parameter IDs without allocating for the
// handful of parameters a peer normally sends.
type seenParams struct {
	small [16]uint64
	n     int
	large map[uint64]struct{}
}

// add records id and reports whether it was seen before.
func (s *seenParams) add(id uint64) bool {
	for _, x := range s.small[:s.n] {
		if x == id {
			return true
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = id
		s.n++
		return false
	}
	if s.large == nil {
		s.large = make(map[uint64]struct{})
	}
	if _, ok := s.large[id]; ok {
		return true
	}
	s.large[id] = struct{}{}
	return false
}
