package wire

import (
	"fmt"

	"github.com/quic-go/quic-go/quicvarint"
)

// Parser decodes the frames in a record's payload, one at a time.
//
// A Parser owns one value of each frame type and ParseNext returns a pointer
// to it, so parsing allocates nothing on the steady-state path. The returned
// frame, and the byte slices in it (which alias the payload), are valid until
// the next call to ParseNext. (Only a QX_TRANSPORT_PARAMETERS frame with
// more than 16 parameters allocates, to detect duplicates.) A Parser is not
// safe for concurrent use.
//
// The zero Parser rejects the negotiated extensions; set the fields once our
// transport parameters are fixed.
type Parser struct {
	// MaxDatagramFrameSize is the max_datagram_frame_size we advertised. If
	// zero, DATAGRAM frames are rejected; otherwise DATAGRAM frames larger
	// than it are. Both with PROTOCOL_VIOLATION (RFC 9221 §3).
	MaxDatagramFrameSize uint64
	// ResetStreamAt reports whether we advertised the reset_stream_at
	// transport parameter. If false, RESET_STREAM_AT is an unknown frame type
	// (FRAME_ENCODING_ERROR, RFC 9000 §12.4).
	ResetStreamAt bool

	padding           PaddingFrame
	resetStream       ResetStreamFrame
	stopSending       StopSendingFrame
	stream            StreamFrame
	maxData           MaxDataFrame
	maxStreamData     MaxStreamDataFrame
	maxStreams        MaxStreamsFrame
	dataBlocked       DataBlockedFrame
	streamDataBlocked StreamDataBlockedFrame
	streamsBlocked    StreamsBlockedFrame
	connectionClose   ConnectionCloseFrame
	resetStreamAt     ResetStreamAtFrame
	datagram          DatagramFrame
	transportParams   TransportParametersFrame
	ping              PingFrame
}

// ParseNext decodes the frame at the start of b, which must be the rest of one
// record's payload: STREAM frames without a Length field and DATAGRAM frames
// of type 0x30 extend to the end of b. It returns the frame and the number of
// bytes it occupies. Any error is an *Error carrying the transport error code
// to close the connection with.
//
// ParseNext checks the encoding only: whether the frame is allowed in the
// connection's state (the first frame must be QX_TRANSPORT_PARAMETERS, a
// stream must exist, ...) is the caller's to decide.
func (p *Parser) ParseNext(b []byte) (Frame, int, error) {
	if len(b) == 0 {
		return nil, 0, newError(FrameEncodingError, 0, "no frame in empty payload")
	}
	t, n, err := quicvarint.Parse(b)
	if err != nil {
		return nil, 0, newError(FrameEncodingError, 0, "frame type truncated at end of record")
	}
	ft := FrameType(t)
	if n != quicvarint.Len(t) {
		// RFC 9000 §12.4: "a frame type MUST use the shortest possible
		// encoding ... An endpoint MAY treat the receipt of a frame type that
		// uses a longer encoding than necessary as a connection error of type
		// PROTOCOL_VIOLATION."
		return nil, 0, newError(ProtocolViolation, ft, "frame type not minimally encoded")
	}
	d := decoder{b: b, pos: n, ok: true}
	var f Frame
	switch {
	case ft == FrameTypePadding:
		end := 1
		for end < len(b) && b[end] == 0 {
			end++
		}
		p.padding.Count = end
		return &p.padding, end, nil
	case ft >= FrameTypeStream && ft <= FrameTypeStream|0x07:
		f = p.parseStream(&d, ft)
	case ft == FrameTypeMaxData:
		p.maxData.MaximumData = d.varint()
		f = &p.maxData
	case ft == FrameTypeMaxStreamData:
		p.maxStreamData.StreamID = d.varint()
		p.maxStreamData.MaximumStreamData = d.varint()
		f = &p.maxStreamData
	case ft == FrameTypeResetStream:
		p.resetStream.StreamID = d.varint()
		p.resetStream.ErrorCode = d.varint()
		p.resetStream.FinalSize = d.varint()
		f = &p.resetStream
	case ft == FrameTypeStopSending:
		p.stopSending.StreamID = d.varint()
		p.stopSending.ErrorCode = d.varint()
		f = &p.stopSending
	case ft == FrameTypeMaxStreamsBidi || ft == FrameTypeMaxStreamsUni:
		p.maxStreams.Bidi = ft == FrameTypeMaxStreamsBidi
		p.maxStreams.MaximumStreams = d.varint()
		if d.ok && p.maxStreams.MaximumStreams > maxStreamCount {
			// RFC 9000 §19.11: "Receipt of a frame that permits opening of a
			// stream larger than this limit MUST be treated as a connection
			// error of type FRAME_ENCODING_ERROR."
			return nil, 0, newError(FrameEncodingError, ft, "maximum streams above 2^60")
		}
		f = &p.maxStreams
	case ft == FrameTypeDataBlocked:
		p.dataBlocked.MaximumData = d.varint()
		f = &p.dataBlocked
	case ft == FrameTypeStreamDataBlocked:
		p.streamDataBlocked.StreamID = d.varint()
		p.streamDataBlocked.MaximumStreamData = d.varint()
		f = &p.streamDataBlocked
	case ft == FrameTypeStreamsBlockedBidi || ft == FrameTypeStreamsBlockedUni:
		p.streamsBlocked.Bidi = ft == FrameTypeStreamsBlockedBidi
		p.streamsBlocked.MaximumStreams = d.varint()
		if d.ok && p.streamsBlocked.MaximumStreams > maxStreamCount {
			// RFC 9000 §19.14: "... MUST be treated as a connection error of
			// type STREAM_LIMIT_ERROR or FRAME_ENCODING_ERROR."
			return nil, 0, newError(FrameEncodingError, ft, "maximum streams above 2^60")
		}
		f = &p.streamsBlocked
	case ft == FrameTypeConnectionClose || ft == FrameTypeConnectionCloseApp:
		c := &p.connectionClose
		c.IsApplication = ft == FrameTypeConnectionCloseApp
		c.ErrorCode = d.varint()
		c.FrameType = 0
		if !c.IsApplication {
			c.FrameType = d.varint()
		}
		c.Reason = d.bytes(d.varint())
		f = c
	case ft == FrameTypeResetStreamAt:
		if !p.ResetStreamAt {
			return nil, 0, newError(FrameEncodingError, ft, "RESET_STREAM_AT not negotiated")
		}
		r := &p.resetStreamAt
		r.StreamID = d.varint()
		r.ErrorCode = d.varint()
		r.FinalSize = d.varint()
		r.ReliableSize = d.varint()
		if d.ok && r.ReliableSize > r.FinalSize {
			// reliable-stream-reset §4: "If the Reliable Size is larger than
			// the Final Size, the receiver MUST close the connection with a
			// connection error of type FRAME_ENCODING_ERROR."
			return nil, 0, newError(FrameEncodingError, ft, "reliable size above final size")
		}
		f = r
	case ft == FrameTypeDatagram || ft == FrameTypeDatagramWithLength:
		if p.MaxDatagramFrameSize == 0 {
			// RFC 9221 §3: a DATAGRAM frame received "when it has not
			// indicated support via the transport parameter MUST terminate
			// the connection with an error of type PROTOCOL_VIOLATION."
			return nil, 0, newError(ProtocolViolation, ft, "DATAGRAM not negotiated")
		}
		g := &p.datagram
		g.HasLength = ft == FrameTypeDatagramWithLength
		if g.HasLength {
			g.Data = d.bytes(d.varint())
		} else {
			g.Data = d.rest()
		}
		if d.ok && uint64(d.pos) > p.MaxDatagramFrameSize {
			// RFC 9221 §3: larger than our max_datagram_frame_size →
			// PROTOCOL_VIOLATION.
			return nil, 0, newError(ProtocolViolation, ft,
				fmt.Sprintf("DATAGRAM frame of %d bytes above max_datagram_frame_size %d", d.pos, p.MaxDatagramFrameSize))
		}
		f = g
	case ft == FrameTypeTransportParameters:
		params := d.bytes(d.varint())
		if !d.ok {
			break
		}
		if err := p.transportParams.Params.Parse(params); err != nil {
			return nil, 0, err
		}
		f = &p.transportParams
	case ft == FrameTypePingRequest || ft == FrameTypePingResponse:
		p.ping.Response = ft == FrameTypePingResponse
		p.ping.Sequence = d.varint()
		f = &p.ping
	case isProhibited(ft):
		// qmux-02 §4: "Endpoints MUST NOT send prohibited frames. If an
		// endpoint receives one it MUST close the connection with an error of
		// type FRAME_ENCODING_ERROR."
		return nil, 0, newError(FrameEncodingError, ft, fmt.Sprintf("%s frame prohibited in QMux", ft))
	default:
		// RFC 9000 §12.4: "An endpoint MUST treat the receipt of a frame of
		// unknown type as a connection error of type FRAME_ENCODING_ERROR."
		return nil, 0, newError(FrameEncodingError, ft, "unknown frame type")
	}
	if !d.ok {
		return nil, 0, errTruncated(ft)
	}
	if f == nil {
		return nil, 0, d.err
	}
	return f, d.pos, nil
}

func (p *Parser) parseStream(d *decoder, ft FrameType) Frame {
	s := &p.stream
	s.StreamID = d.varint()
	s.Offset = 0
	if ft&streamFlagOff != 0 {
		s.Offset = d.varint()
	}
	s.HasLength = ft&streamFlagLen != 0
	if s.HasLength {
		s.Data = d.bytes(d.varint())
	} else {
		s.Data = d.rest()
	}
	s.Fin = ft&streamFlagFin != 0
	if d.ok && s.Offset+uint64(len(s.Data)) > quicvarint.Max {
		// RFC 9000 §19.8: offset plus data length above 2^62-1 "MUST be
		// treated as a connection error of type FRAME_ENCODING_ERROR or
		// FLOW_CONTROL_ERROR."
		d.err = newError(FrameEncodingError, ft, "stream data beyond 2^62-1")
		return nil
	}
	return s
}

// isProhibited reports the QUIC v1 frames qmux-02 §4 lists as prohibited:
// PING, ACK, CRYPTO, NEW_TOKEN, NEW_CONNECTION_ID, RETIRE_CONNECTION_ID,
// PATH_CHALLENGE, PATH_RESPONSE and HANDSHAKE_DONE.
func isProhibited(ft FrameType) bool {
	switch ft {
	case FrameTypePing, FrameTypeAck, FrameTypeAckECN, FrameTypeCrypto, FrameTypeNewToken,
		FrameTypeNewConnectionID, FrameTypeRetireConnectionID,
		FrameTypePathChallenge, FrameTypePathResponse, FrameTypeHandshakeDone:
		return true
	}
	return false
}

// decoder reads the fields of one frame. After the first truncated field ok
// is false and every later read returns a zero value, so a frame's fields can
// be read unconditionally and checked once.
type decoder struct {
	b   []byte
	pos int
	ok  bool
	err error // a non-truncation error found by a frame-specific check
}

func (d *decoder) varint() uint64 {
	if !d.ok || d.pos >= len(d.b) {
		d.ok = false
		return 0
	}
	b := d.b[d.pos:]
	l := 1 << (b[0] >> 6)
	if len(b) < l {
		d.ok = false
		return 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:l] {
		v = v<<8 | uint64(c)
	}
	d.pos += l
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if !d.ok {
		return nil
	}
	if n > uint64(len(d.b)-d.pos) {
		d.ok = false
		return nil
	}
	end := d.pos + int(n)
	s := d.b[d.pos:end:end]
	d.pos = end
	return s
}

func (d *decoder) rest() []byte {
	if !d.ok {
		return nil
	}
	s := d.b[d.pos:len(d.b):len(d.b)]
	d.pos = len(d.b)
	return s
}
