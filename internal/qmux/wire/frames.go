package wire

import (
	"fmt"

	"github.com/quic-go/quic-go/quicvarint"
)

// FrameType is a QUIC frame type. On the wire it is a varint that must be
// minimally encoded (RFC 9000 §12.4).
type FrameType uint64

// Frame types of RFC 9000 §19, RFC 9221, draft-ietf-quic-reliable-stream-reset
// and draft-ietf-quic-qmux-02 §4.
const (
	FrameTypePadding            FrameType = 0x00 // run of zero bytes
	FrameTypePing               FrameType = 0x01 // prohibited in QMux
	FrameTypeAck                FrameType = 0x02 // prohibited in QMux
	FrameTypeAckECN             FrameType = 0x03 // prohibited in QMux
	FrameTypeResetStream        FrameType = 0x04 // stream ID, app error code, final size
	FrameTypeStopSending        FrameType = 0x05 // stream ID, app error code
	FrameTypeCrypto             FrameType = 0x06 // prohibited in QMux
	FrameTypeNewToken           FrameType = 0x07 // prohibited in QMux
	FrameTypeStream             FrameType = 0x08 // 0x08-0x0f: stream ID, [offset], [length], data
	FrameTypeMaxData            FrameType = 0x10 // maximum data
	FrameTypeMaxStreamData      FrameType = 0x11 // stream ID, maximum stream data
	FrameTypeMaxStreamsBidi     FrameType = 0x12 // maximum streams
	FrameTypeMaxStreamsUni      FrameType = 0x13 // maximum streams
	FrameTypeDataBlocked        FrameType = 0x14 // maximum data
	FrameTypeStreamDataBlocked  FrameType = 0x15 // stream ID, maximum stream data
	FrameTypeStreamsBlockedBidi FrameType = 0x16 // maximum streams
	FrameTypeStreamsBlockedUni  FrameType = 0x17 // maximum streams
	FrameTypeNewConnectionID    FrameType = 0x18 // prohibited in QMux
	FrameTypeRetireConnectionID FrameType = 0x19 // prohibited in QMux
	FrameTypePathChallenge      FrameType = 0x1a // prohibited in QMux
	FrameTypePathResponse       FrameType = 0x1b // prohibited in QMux
	FrameTypeConnectionClose    FrameType = 0x1c // error code, frame type, reason length, reason
	FrameTypeConnectionCloseApp FrameType = 0x1d // error code, reason length, reason
	FrameTypeHandshakeDone      FrameType = 0x1e // prohibited in QMux
	FrameTypeResetStreamAt      FrameType = 0x24 // stream ID, app error code, final size, reliable size
	FrameTypeDatagram           FrameType = 0x30 // data to the end of the record
	FrameTypeDatagramWithLength FrameType = 0x31 // length, data
	// FrameTypeTransportParameters is QX_TRANSPORT_PARAMETERS: length, parameters.
	// On the wire: ff 51 53 30 0d 0a 0d 0a. (The draft's prose spells this
	// "\xffQMX\r\n\r\n", which does not match its own hex; the hex is used.)
	FrameTypeTransportParameters FrameType = 0x3f5153300d0a0d0a
	FrameTypePingRequest         FrameType = 0x348c67529ef8c7bd // QX_PING: sequence number
	FrameTypePingResponse        FrameType = 0x348c67529ef8c7be // QX_PING: sequence number
)

// Flag bits in the STREAM frame type (RFC 9000 §19.8).
const (
	streamFlagFin = 0x01
	streamFlagLen = 0x02
	streamFlagOff = 0x04
)

// maxStreamCount is the largest MAX_STREAMS / STREAMS_BLOCKED value and
// initial_max_streams_* parameter: larger counts would need stream IDs above
// 2^62-1 (RFC 9000 §4.6).
const maxStreamCount = 1 << 60

var frameTypeNames = map[FrameType]string{
	FrameTypePadding:             "PADDING",
	FrameTypePing:                "PING",
	FrameTypeAck:                 "ACK",
	FrameTypeAckECN:              "ACK_ECN",
	FrameTypeResetStream:         "RESET_STREAM",
	FrameTypeStopSending:         "STOP_SENDING",
	FrameTypeCrypto:              "CRYPTO",
	FrameTypeNewToken:            "NEW_TOKEN",
	FrameTypeMaxData:             "MAX_DATA",
	FrameTypeMaxStreamData:       "MAX_STREAM_DATA",
	FrameTypeMaxStreamsBidi:      "MAX_STREAMS_BIDI",
	FrameTypeMaxStreamsUni:       "MAX_STREAMS_UNI",
	FrameTypeDataBlocked:         "DATA_BLOCKED",
	FrameTypeStreamDataBlocked:   "STREAM_DATA_BLOCKED",
	FrameTypeStreamsBlockedBidi:  "STREAMS_BLOCKED_BIDI",
	FrameTypeStreamsBlockedUni:   "STREAMS_BLOCKED_UNI",
	FrameTypeNewConnectionID:     "NEW_CONNECTION_ID",
	FrameTypeRetireConnectionID:  "RETIRE_CONNECTION_ID",
	FrameTypePathChallenge:       "PATH_CHALLENGE",
	FrameTypePathResponse:        "PATH_RESPONSE",
	FrameTypeConnectionClose:     "CONNECTION_CLOSE",
	FrameTypeConnectionCloseApp:  "CONNECTION_CLOSE_APP",
	FrameTypeHandshakeDone:       "HANDSHAKE_DONE",
	FrameTypeResetStreamAt:       "RESET_STREAM_AT",
	FrameTypeDatagram:            "DATAGRAM",
	FrameTypeDatagramWithLength:  "DATAGRAM_LEN",
	FrameTypeTransportParameters: "QX_TRANSPORT_PARAMETERS",
	FrameTypePingRequest:         "QX_PING",
	FrameTypePingResponse:        "QX_PING_RESPONSE",
}

// String returns the frame type's name, e.g. "STREAM" or "QX_PING".
func (t FrameType) String() string {
	if t >= FrameTypeStream && t <= FrameTypeStream|0x07 {
		return "STREAM"
	}
	if name, ok := frameTypeNames[t]; ok {
		return name
	}
	return fmt.Sprintf("0x%x", uint64(t))
}

// Frame is a decoded QUIC or QMux frame. The concrete types are the pointer
// types of the *Frame structs in this package.
type Frame interface {
	// Type returns the frame type the frame encodes to.
	Type() FrameType
	// Length returns the number of bytes Append appends.
	Length() int
	// Append appends the encoded frame to b. Values must be within the varint
	// range (below 2^62); Append panics otherwise.
	Append(b []byte) []byte
}

var (
	_ Frame = (*PaddingFrame)(nil)
	_ Frame = (*ResetStreamFrame)(nil)
	_ Frame = (*StopSendingFrame)(nil)
	_ Frame = (*StreamFrame)(nil)
	_ Frame = (*MaxDataFrame)(nil)
	_ Frame = (*MaxStreamDataFrame)(nil)
	_ Frame = (*MaxStreamsFrame)(nil)
	_ Frame = (*DataBlockedFrame)(nil)
	_ Frame = (*StreamDataBlockedFrame)(nil)
	_ Frame = (*StreamsBlockedFrame)(nil)
	_ Frame = (*ConnectionCloseFrame)(nil)
	_ Frame = (*ResetStreamAtFrame)(nil)
	_ Frame = (*DatagramFrame)(nil)
	_ Frame = (*TransportParametersFrame)(nil)
	_ Frame = (*PingFrame)(nil)
)

func vlen(v uint64) int { return quicvarint.Len(v) }

// PaddingFrame is a run of Count PADDING frames (single zero bytes). The
// parser folds consecutive PADDING frames into one value.
type PaddingFrame struct {
	Count int
}

func (f *PaddingFrame) Type() FrameType { return FrameTypePadding }
func (f *PaddingFrame) Length() int     { return f.Count }

func (f *PaddingFrame) Append(b []byte) []byte {
	for range f.Count {
		b = append(b, 0)
	}
	return b
}

// ResetStreamFrame is RESET_STREAM (RFC 9000 §19.4).
type ResetStreamFrame struct {
	StreamID  uint64
	ErrorCode uint64 // application protocol error code
	FinalSize uint64
}

func (f *ResetStreamFrame) Type() FrameType { return FrameTypeResetStream }
func (f *ResetStreamFrame) Length() int {
	return 1 + vlen(f.StreamID) + vlen(f.ErrorCode) + vlen(f.FinalSize)
}

func (f *ResetStreamFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeResetStream))
	b = quicvarint.Append(b, f.StreamID)
	b = quicvarint.Append(b, f.ErrorCode)
	return quicvarint.Append(b, f.FinalSize)
}

// StopSendingFrame is STOP_SENDING (RFC 9000 §19.5).
type StopSendingFrame struct {
	StreamID  uint64
	ErrorCode uint64 // application protocol error code
}

func (f *StopSendingFrame) Type() FrameType { return FrameTypeStopSending }
func (f *StopSendingFrame) Length() int     { return 1 + vlen(f.StreamID) + vlen(f.ErrorCode) }

func (f *StopSendingFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeStopSending))
	b = quicvarint.Append(b, f.StreamID)
	return quicvarint.Append(b, f.ErrorCode)
}

// StreamFrame is STREAM (RFC 9000 §19.8).
//
// The OFF bit is set exactly when Offset is non-zero. Without HasLength the
// frame runs to the end of its record (qmux-02 §3.2), so it must be the last
// frame the writer puts in a record.
type StreamFrame struct {
	StreamID  uint64
	Offset    uint64
	Data      []byte // when parsed: aliases the record, capacity clipped to its length
	Fin       bool
	HasLength bool // encode a Length field (the LEN bit)
}

func (f *StreamFrame) Type() FrameType {
	t := FrameTypeStream
	if f.Offset != 0 {
		t |= streamFlagOff
	}
	if f.HasLength {
		t |= streamFlagLen
	}
	if f.Fin {
		t |= streamFlagFin
	}
	return t
}

func (f *StreamFrame) headerLen() int {
	n := 1 + vlen(f.StreamID)
	if f.Offset != 0 {
		n += vlen(f.Offset)
	}
	return n
}

func (f *StreamFrame) Length() int {
	n := f.headerLen() + len(f.Data)
	if f.HasLength {
		n += vlen(uint64(len(f.Data)))
	}
	return n
}

func (f *StreamFrame) Append(b []byte) []byte {
	b = append(b, byte(f.Type()))
	b = quicvarint.Append(b, f.StreamID)
	if f.Offset != 0 {
		b = quicvarint.Append(b, f.Offset)
	}
	if f.HasLength {
		b = quicvarint.Append(b, uint64(len(f.Data)))
	}
	return append(b, f.Data...)
}

// MaxDataLen returns the most data a STREAM frame with f's StreamID, Offset
// and HasLength can carry so that its encoding is at most size bytes, or 0 if
// not even an empty frame fits. Split stream data with it:
//
//	f.Data = data[:min(len(data), f.MaxDataLen(room))]
func (f *StreamFrame) MaxDataLen(size int) int {
	return maxPayload(size-f.headerLen(), f.HasLength)
}

// maxPayload returns the largest n such that n bytes of payload, preceded by
// their varint length if withLen, fit in room bytes.
func maxPayload(room int, withLen bool) int {
	if !withLen {
		return max(room, 0)
	}
	best := 0
	for _, l := range [...]int{1, 2, 4, 8} {
		if room < l {
			break
		}
		best = max(best, int(min(uint64(room-l), maxForVarintLen(l))))
	}
	return best
}

// MaxDataFrame is MAX_DATA (RFC 9000 §19.9).
type MaxDataFrame struct {
	MaximumData uint64
}

func (f *MaxDataFrame) Type() FrameType { return FrameTypeMaxData }
func (f *MaxDataFrame) Length() int     { return 1 + vlen(f.MaximumData) }

func (f *MaxDataFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeMaxData))
	return quicvarint.Append(b, f.MaximumData)
}

// MaxStreamDataFrame is MAX_STREAM_DATA (RFC 9000 §19.10).
type MaxStreamDataFrame struct {
	StreamID          uint64
	MaximumStreamData uint64
}

func (f *MaxStreamDataFrame) Type() FrameType { return FrameTypeMaxStreamData }
func (f *MaxStreamDataFrame) Length() int {
	return 1 + vlen(f.StreamID) + vlen(f.MaximumStreamData)
}

func (f *MaxStreamDataFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeMaxStreamData))
	b = quicvarint.Append(b, f.StreamID)
	return quicvarint.Append(b, f.MaximumStreamData)
}

// MaxStreamsFrame is MAX_STREAMS (RFC 9000 §19.11). MaximumStreams is at most
// 2^60.
type MaxStreamsFrame struct {
	Bidi           bool
	MaximumStreams uint64
}

func (f *MaxStreamsFrame) Type() FrameType {
	if f.Bidi {
		return FrameTypeMaxStreamsBidi
	}
	return FrameTypeMaxStreamsUni
}
func (f *MaxStreamsFrame) Length() int { return 1 + vlen(f.MaximumStreams) }

func (f *MaxStreamsFrame) Append(b []byte) []byte {
	b = append(b, byte(f.Type()))
	return quicvarint.Append(b, f.MaximumStreams)
}

// DataBlockedFrame is DATA_BLOCKED (RFC 9000 §19.12).
type DataBlockedFrame struct {
	MaximumData uint64
}

func (f *DataBlockedFrame) Type() FrameType { return FrameTypeDataBlocked }
func (f *DataBlockedFrame) Length() int     { return 1 + vlen(f.MaximumData) }

func (f *DataBlockedFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeDataBlocked))
	return quicvarint.Append(b, f.MaximumData)
}

// StreamDataBlockedFrame is STREAM_DATA_BLOCKED (RFC 9000 §19.13).
type StreamDataBlockedFrame struct {
	StreamID          uint64
	MaximumStreamData uint64
}

func (f *StreamDataBlockedFrame) Type() FrameType { return FrameTypeStreamDataBlocked }
func (f *StreamDataBlockedFrame) Length() int {
	return 1 + vlen(f.StreamID) + vlen(f.MaximumStreamData)
}

func (f *StreamDataBlockedFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeStreamDataBlocked))
	b = quicvarint.Append(b, f.StreamID)
	return quicvarint.Append(b, f.MaximumStreamData)
}

// StreamsBlockedFrame is STREAMS_BLOCKED (RFC 9000 §19.14). MaximumStreams is
// at most 2^60.
type StreamsBlockedFrame struct {
	Bidi           bool
	MaximumStreams uint64
}

func (f *StreamsBlockedFrame) Type() FrameType {
	if f.Bidi {
		return FrameTypeStreamsBlockedBidi
	}
	return FrameTypeStreamsBlockedUni
}
func (f *StreamsBlockedFrame) Length() int { return 1 + vlen(f.MaximumStreams) }

func (f *StreamsBlockedFrame) Append(b []byte) []byte {
	b = append(b, byte(f.Type()))
	return quicvarint.Append(b, f.MaximumStreams)
}

// ConnectionCloseFrame is CONNECTION_CLOSE (RFC 9000 §19.19): type 0x1c for
// transport errors (ErrorCode is a TransportErrorCode and FrameType names the
// offending frame, 0 if none), type 0x1d when IsApplication (ErrorCode is an
// application error code; FrameType is not encoded and must be 0).
type ConnectionCloseFrame struct {
	IsApplication bool
	ErrorCode     uint64
	FrameType     uint64
	Reason        []byte // when parsed: aliases the record
}

func (f *ConnectionCloseFrame) Type() FrameType {
	if f.IsApplication {
		return FrameTypeConnectionCloseApp
	}
	return FrameTypeConnectionClose
}

func (f *ConnectionCloseFrame) Length() int {
	n := 1 + vlen(f.ErrorCode) + vlen(uint64(len(f.Reason))) + len(f.Reason)
	if !f.IsApplication {
		n += vlen(f.FrameType)
	}
	return n
}

func (f *ConnectionCloseFrame) Append(b []byte) []byte {
	b = append(b, byte(f.Type()))
	b = quicvarint.Append(b, f.ErrorCode)
	if !f.IsApplication {
		b = quicvarint.Append(b, f.FrameType)
	}
	b = quicvarint.Append(b, uint64(len(f.Reason)))
	return append(b, f.Reason...)
}

// ResetStreamAtFrame is RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset
// §4). ReliableSize is at most FinalSize.
type ResetStreamAtFrame struct {
	StreamID     uint64
	ErrorCode    uint64 // application protocol error code
	FinalSize    uint64
	ReliableSize uint64
}

func (f *ResetStreamAtFrame) Type() FrameType { return FrameTypeResetStreamAt }
func (f *ResetStreamAtFrame) Length() int {
	return 1 + vlen(f.StreamID) + vlen(f.ErrorCode) + vlen(f.FinalSize) + vlen(f.ReliableSize)
}

func (f *ResetStreamAtFrame) Append(b []byte) []byte {
	b = append(b, byte(FrameTypeResetStreamAt))
	b = quicvarint.Append(b, f.StreamID)
	b = quicvarint.Append(b, f.ErrorCode)
	b = quicvarint.Append(b, f.FinalSize)
	return quicvarint.Append(b, f.ReliableSize)
}

// DatagramFrame is DATAGRAM (RFC 9221 §4). Without HasLength (type 0x30) it
// runs to the end of its record, so it must be the last frame in it.
type DatagramFrame struct {
	Data      []byte // when parsed: aliases the record, capacity clipped to its length
	HasLength bool
}

func (f *DatagramFrame) Type() FrameType {
	if f.HasLength {
		return FrameTypeDatagramWithLength
	}
	return FrameTypeDatagram
}

func (f *DatagramFrame) Length() int {
	n := 1 + len(f.Data)
	if f.HasLength {
		n += vlen(uint64(len(f.Data)))
	}
	return n
}

func (f *DatagramFrame) Append(b []byte) []byte {
	b = append(b, byte(f.Type()))
	if f.HasLength {
		b = quicvarint.Append(b, uint64(len(f.Data)))
	}
	return append(b, f.Data...)
}

// MaxDataLen returns the most data a DATAGRAM frame with f's HasLength can
// carry in size bytes, or 0 if not even an empty frame fits. The peer's
// max_datagram_frame_size bounds size too (RFC 9221 §3).
func (f *DatagramFrame) MaxDataLen(size int) int {
	return maxPayload(size-1, f.HasLength)
}

// TransportParametersFrame is QX_TRANSPORT_PARAMETERS (qmux-02 §4.2).
type TransportParametersFrame struct {
	Params TransportParameters
}

func (f *TransportParametersFrame) Type() FrameType { return FrameTypeTransportParameters }

func (f *TransportParametersFrame) Length() int {
	n := f.Params.Length()
	return vlen(uint64(FrameTypeTransportParameters)) + vlen(uint64(n)) + n
}

func (f *TransportParametersFrame) Append(b []byte) []byte {
	b = quicvarint.Append(b, uint64(FrameTypeTransportParameters))
	b = quicvarint.Append(b, uint64(f.Params.Length()))
	return f.Params.Append(b)
}

// PingFrame is QX_PING (qmux-02 §4.3): a request, or with Response set the
// answer echoing a request's Sequence.
type PingFrame struct {
	Response bool
	Sequence uint64
}

func (f *PingFrame) Type() FrameType {
	if f.Response {
		return FrameTypePingResponse
	}
	return FrameTypePingRequest
}
func (f *PingFrame) Length() int { return vlen(uint64(f.Type())) + vlen(f.Sequence) }

func (f *PingFrame) Append(b []byte) []byte {
	b = quicvarint.Append(b, uint64(f.Type()))
	return quicvarint.Append(b, f.Sequence)
}
