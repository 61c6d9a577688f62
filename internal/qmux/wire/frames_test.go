package wire

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/quic-go/quic-go/quicvarint"
	"github.com/stretchr/testify/require"
)

// edgeValues are varint values at every encoding-length boundary.
var edgeValues = []uint64{0, 1, 63, 64, 16383, 16384, 1<<30 - 1, 1 << 30, quicvarint.Max}

// streamCounts are edge values for MAX_STREAMS and STREAMS_BLOCKED.
var streamCounts = []uint64{0, 1, 63, 64, 16383, 16384, 1<<30 - 1, 1 << 30, maxStreamCount}

// allFrames returns frames of every type with edge values.
func allFrames() []Frame {
	var fs []Frame
	fs = append(fs, &PaddingFrame{Count: 1}, &PaddingFrame{Count: 7})
	for _, v := range edgeValues {
		fs = append(fs,
			&ResetStreamFrame{StreamID: v, ErrorCode: v, FinalSize: v},
			&ResetStreamFrame{StreamID: 4, ErrorCode: quicvarint.Max - v, FinalSize: v / 2},
			&StopSendingFrame{StreamID: v, ErrorCode: quicvarint.Max - v},
			&MaxDataFrame{MaximumData: v},
			&MaxStreamDataFrame{StreamID: v, MaximumStreamData: quicvarint.Max - v},
			&DataBlockedFrame{MaximumData: v},
			&StreamDataBlockedFrame{StreamID: quicvarint.Max - v, MaximumStreamData: v},
			&ConnectionCloseFrame{ErrorCode: v, FrameType: v},
			&ConnectionCloseFrame{IsApplication: true, ErrorCode: v, Reason: []byte("bye")},
			&ResetStreamAtFrame{StreamID: v, ErrorCode: v, FinalSize: v, ReliableSize: v},
			&ResetStreamAtFrame{StreamID: v, ErrorCode: 1, FinalSize: quicvarint.Max, ReliableSize: v},
			&PingFrame{Sequence: v},
			&PingFrame{Response: true, Sequence: v},
		)
	}
	for _, v := range streamCounts {
		fs = append(fs,
			&MaxStreamsFrame{Bidi: true, MaximumStreams: v},
			&MaxStreamsFrame{MaximumStreams: v},
			&StreamsBlockedFrame{Bidi: true, MaximumStreams: v},
			&StreamsBlockedFrame{MaximumStreams: v},
		)
	}
	for _, data := range [][]byte{nil, {0x42}, bytes.Repeat([]byte{0xab}, 64), bytes.Repeat([]byte{0xcd}, 16384)} {
		fs = append(fs,
			&ConnectionCloseFrame{ErrorCode: uint64(FrameEncodingError), FrameType: 0x08, Reason: data},
			&DatagramFrame{Data: data},
			&DatagramFrame{Data: data, HasLength: true},
		)
		for _, id := range edgeValues {
			for _, off := range []uint64{0, 1, 16384, quicvarint.Max - uint64(len(data))} {
				for _, hasLen := range []bool{false, true} {
					for _, fin := range []bool{false, true} {
						fs = append(fs, &StreamFrame{StreamID: id, Offset: off, Data: data, HasLength: hasLen, Fin: fin})
					}
				}
			}
		}
	}
	fs = append(fs,
		&TransportParametersFrame{Params: TransportParameters{MaxRecordSize: DefaultMaxRecordSize}},
		&TransportParametersFrame{Params: testTransportParameters()},
		&TransportParametersFrame{Params: TransportParameters{
			MaxIdleTimeout:                 time.Duration(maxIdleTimeoutMillis) * time.Millisecond,
			InitialMaxData:                 quicvarint.Max,
			InitialMaxStreamDataBidiLocal:  quicvarint.Max,
			InitialMaxStreamDataBidiRemote: quicvarint.Max,
			InitialMaxStreamDataUni:        quicvarint.Max,
			InitialMaxStreamsBidi:          maxStreamCount,
			InitialMaxStreamsUni:           maxStreamCount,
			MaxRecordSize:                  quicvarint.Max,
			MaxDatagramFrameSize:           quicvarint.Max,
			ResetStreamAt:                  true,
		}},
	)
	return fs
}

func TestFrameRoundTrip(t *testing.T) {
	p := fullParser()
	for _, f := range allFrames() {
		name := fmt.Sprintf("%s %+v", f.Type(), f)
		b := f.Append([]byte{0xee}) // Append appends: it must not touch b
		require.Equal(t, byte(0xee), b[0])
		b = b[1:]
		require.Len(t, b, f.Length(), name)
		got, n, err := p.ParseNext(b)
		require.NoError(t, err, name)
		require.Equal(t, len(b), n, name)
		require.Equal(t, f.Type(), got.Type(), name)
		require.Equal(t, cloneFrame(f), cloneFrame(got), name)
	}
}

func TestStreamFrameEncoding(t *testing.T) {
	for _, tc := range []struct {
		f    StreamFrame
		want []byte
	}{
		{StreamFrame{StreamID: 4, Data: []byte("hi")}, []byte{0x08, 0x04, 'h', 'i'}},
		{StreamFrame{StreamID: 4, Data: []byte("hi"), Fin: true}, []byte{0x09, 0x04, 'h', 'i'}},
		{StreamFrame{StreamID: 4, Data: []byte("hi"), HasLength: true}, []byte{0x0a, 0x04, 0x02, 'h', 'i'}},
		{StreamFrame{StreamID: 4, Offset: 64, Data: []byte("hi")}, []byte{0x0c, 0x04, 0x40, 0x40, 'h', 'i'}},
		{StreamFrame{StreamID: 4, Offset: 1, Fin: true, HasLength: true}, []byte{0x0f, 0x04, 0x01, 0x00}},
	} {
		require.Equal(t, tc.want, tc.f.Append(nil))
	}
}

func TestParseStreamFrameAcceptsOffsetZero(t *testing.T) {
	// The OFF bit with an explicit zero offset, and non-minimal field
	// encodings, are legal (RFC 9000 §16: only the frame type must be minimal).
	b := []byte{0x0e, 0x80, 0x00, 0x00, 0x04, 0x40, 0x00, 0x40, 0x02, 'h', 'i', 0x00}
	f, n, err := fullParser().ParseNext(b)
	require.NoError(t, err)
	require.Equal(t, 11, n)
	require.Equal(t, &StreamFrame{StreamID: 4, Data: []byte("hi"), HasLength: true}, cloneFrame(f))
}

func TestParseStreamWithoutLengthRunsToEndOfRecord(t *testing.T) {
	payload := []byte{0x10, 0x05, 0x08, 0x04, 'a', 'b', 'c'}
	p := fullParser()
	f, n, err := p.ParseNext(payload)
	require.NoError(t, err)
	require.Equal(t, &MaxDataFrame{MaximumData: 5}, f)
	f, m, err := p.ParseNext(payload[n:])
	require.NoError(t, err)
	require.Equal(t, len(payload)-n, m)
	require.Equal(t, []byte("abc"), f.(*StreamFrame).Data)
}

func TestParseDatagramWithoutLengthRunsToEndOfRecord(t *testing.T) {
	f, n, err := fullParser().ParseNext([]byte{0x30, 'a', 'b', 'c'})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, &DatagramFrame{Data: []byte("abc")}, cloneFrame(f))
}

func TestParsePaddingRun(t *testing.T) {
	f, n, err := fullParser().ParseNext([]byte{0, 0, 0, 0x10, 0x01})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, &PaddingFrame{Count: 3}, f)
}

func TestParseSequenceOfFrames(t *testing.T) {
	frames := []Frame{
		&MaxStreamDataFrame{StreamID: 8, MaximumStreamData: 1 << 20},
		&PaddingFrame{Count: 2},
		&StreamFrame{StreamID: 0, Offset: 100, Data: []byte("first"), HasLength: true},
		&ConnectionCloseFrame{IsApplication: true, ErrorCode: 7, Reason: []byte("done")},
		&PingFrame{Sequence: 9},
		&StreamFrame{StreamID: 4, Data: []byte("last"), Fin: true},
	}
	var b []byte
	for _, f := range frames {
		b = f.Append(b)
	}
	p := fullParser()
	for i, want := range frames {
		f, n, err := p.ParseNext(b)
		require.NoError(t, err, "frame %d", i)
		require.Equal(t, cloneFrame(want), cloneFrame(f), "frame %d", i)
		b = b[n:]
	}
	require.Empty(t, b)
}

func TestParseProhibitedFrames(t *testing.T) {
	// qmux-02 §4: prohibited frames are a FRAME_ENCODING_ERROR. Each is given
	// a well-formed QUIC v1 body so that only the type can be at fault.
	for ft, body := range map[FrameType][]byte{
		FrameTypePing:               nil,
		FrameTypeAck:                {0x00, 0x00, 0x00, 0x00},
		FrameTypeAckECN:             {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
		FrameTypeCrypto:             {0x00, 0x01, 0xaa},
		FrameTypeNewToken:           {0x01, 0xaa},
		FrameTypeNewConnectionID:    append([]byte{0x01, 0x00, 0x04, 1, 2, 3, 4}, make([]byte, 16)...),
		FrameTypeRetireConnectionID: {0x00},
		FrameTypePathChallenge:      make([]byte, 8),
		FrameTypePathResponse:       make([]byte, 8),
		FrameTypeHandshakeDone:      nil,
	} {
		_, _, err := fullParser().ParseNext(append([]byte{byte(ft)}, body...))
		e := requireCode(t, err, FrameEncodingError)
		require.Equal(t, uint64(ft), e.FrameType)
		require.Contains(t, e.Reason, "prohibited")
	}
}

func TestParseUnknownFrameTypes(t *testing.T) {
	for _, typ := range [][]byte{
		{0x1f}, {0x20}, {0x21}, {0x25}, {0x2f}, {0x32}, {0x3f},
		{0x40, 0xaf},             // ACK_FREQUENCY
		{0x80, 0x00, 0x40, 0x00}, // 0x4000: 4 bytes is minimal for it
		{0xff, 0x51, 0x53, 0x30, 0x0d, 0x0a, 0x0d, 0x0b},
		{0xf4, 0x8c, 0x67, 0x52, 0x9e, 0xf8, 0xc7, 0xbf},
	} {
		_, _, err := fullParser().ParseNext(append(typ, 0x00, 0x00))
		e := requireCode(t, err, FrameEncodingError)
		v, _, _ := quicvarint.Parse(typ)
		require.Equal(t, v, e.FrameType)
		require.Contains(t, e.Reason, "unknown")
	}
}

func TestParseNonMinimalFrameType(t *testing.T) {
	// RFC 9000 §12.4: a longer-than-necessary frame type MAY be treated as a
	// PROTOCOL_VIOLATION; we always do.
	for _, typ := range [][]byte{
		{0x40, 0x00},                   // PADDING
		{0x40, 0x08},                   // STREAM
		{0x80, 0x00, 0x00, 0x10},       // MAX_DATA
		{0x40, 0x01},                   // PING, prohibited as well
		{0xc0, 0, 0, 0, 0, 0, 0, 0x1c}, // CONNECTION_CLOSE
		{0x40, 0x21},                   // unknown as well
	} {
		_, _, err := fullParser().ParseNext(append(typ, make([]byte, 8)...))
		requireCode(t, err, ProtocolViolation)
	}
}

func TestQMuxFrameTypesAreMinimal(t *testing.T) {
	// The QMux types need all 8 bytes, so they are minimally encoded.
	require.Equal(t, []byte{0xff, 0x51, 0x53, 0x30, 0x0d, 0x0a, 0x0d, 0x0a},
		quicvarint.Append(nil, uint64(FrameTypeTransportParameters)))
	require.Equal(t, []byte{0xf4, 0x8c, 0x67, 0x52, 0x9e, 0xf8, 0xc7, 0xbd},
		(&PingFrame{}).Append(nil)[:8])
	require.Equal(t, []byte{0xf4, 0x8c, 0x67, 0x52, 0x9e, 0xf8, 0xc7, 0xbe, 0x05},
		(&PingFrame{Response: true, Sequence: 5}).Append(nil))
}

func TestParseTruncatedFrames(t *testing.T) {
	// qmux-02 §3.2: a frame cut by the end of its record is a
	// FRAME_ENCODING_ERROR. Frames that run to the end of the record (and
	// PADDING) have valid prefixes instead: the shorter frame.
	p := fullParser()
	for _, f := range allFrames() {
		b := f.Append(nil)
		for k := range len(b) {
			if k > 300 && k < len(b)-300 {
				// The middle of a long payload adds nothing to its
				// first and last 300 prefixes but time.
				continue
			}
			got, n, err := p.ParseNext(b[:k])
			if err != nil {
				e := requireCode(t, err, FrameEncodingError)
				if k > 0 && k >= quicvarint.Len(uint64(f.Type())) && e.FrameType != uint64(f.Type()) {
					t.Fatalf("%s prefix %d: error for frame type 0x%x", f.Type(), k, e.FrameType)
				}
				continue
			}
			if n != k {
				t.Fatalf("%s prefix %d: consumed %d", f.Type(), k, n)
			}
			switch g := got.(type) {
			case *PaddingFrame:
			case *StreamFrame:
				require.False(t, g.HasLength, "%s prefix %d", f.Type(), k)
			case *DatagramFrame:
				require.False(t, g.HasLength, "%s prefix %d", f.Type(), k)
			default:
				t.Fatalf("%s: prefix %d of %d bytes parsed as %+v", f.Type(), k, len(b), got)
			}
		}
	}
}

func TestParseStreamBeyondMaxOffset(t *testing.T) {
	// RFC 9000 §19.8: offset + length above 2^62-1 is a FRAME_ENCODING_ERROR.
	f := &StreamFrame{StreamID: 0, Offset: quicvarint.Max, Data: []byte{1}, HasLength: true}
	_, _, err := fullParser().ParseNext(f.Append(nil))
	e := requireCode(t, err, FrameEncodingError)
	require.Equal(t, uint64(0x0e), e.FrameType)

	f.HasLength = false
	_, _, err = fullParser().ParseNext(f.Append(nil))
	requireCode(t, err, FrameEncodingError)

	f.Data = nil // an empty frame at 2^62-1 is fine
	_, _, err = fullParser().ParseNext(f.Append(nil))
	require.NoError(t, err)
}

func TestParseTooManyStreams(t *testing.T) {
	// RFC 9000 §19.11 and §19.14: more than 2^60 streams is a
	// FRAME_ENCODING_ERROR.
	for _, f := range []Frame{
		&MaxStreamsFrame{Bidi: true, MaximumStreams: maxStreamCount + 1},
		&MaxStreamsFrame{MaximumStreams: quicvarint.Max},
		&StreamsBlockedFrame{Bidi: true, MaximumStreams: maxStreamCount + 1},
		&StreamsBlockedFrame{MaximumStreams: quicvarint.Max},
	} {
		_, _, err := fullParser().ParseNext(f.Append(nil))
		e := requireCode(t, err, FrameEncodingError)
		require.Equal(t, uint64(f.Type()), e.FrameType)
	}
}

func TestParseResetStreamAt(t *testing.T) {
	f := &ResetStreamAtFrame{StreamID: 4, ErrorCode: 1, FinalSize: 10, ReliableSize: 11}
	_, _, err := fullParser().ParseNext(f.Append(nil))
	// reliable-stream-reset §4: Reliable Size > Final Size is a
	// FRAME_ENCODING_ERROR.
	requireCode(t, err, FrameEncodingError)

	f.ReliableSize = 10
	_, _, err = (&Parser{}).ParseNext(f.Append(nil))
	e := requireCode(t, err, FrameEncodingError)
	require.Equal(t, uint64(FrameTypeResetStreamAt), e.FrameType)
	require.Contains(t, e.Reason, "not negotiated")
}

func TestParseDatagramNotNegotiated(t *testing.T) {
	// RFC 9221 §3: PROTOCOL_VIOLATION.
	for _, f := range []Frame{&DatagramFrame{Data: []byte("x")}, &DatagramFrame{Data: []byte("x"), HasLength: true}} {
		_, _, err := (&Parser{ResetStreamAt: true}).ParseNext(f.Append(nil))
		e := requireCode(t, err, ProtocolViolation)
		require.Equal(t, uint64(f.Type()), e.FrameType)
	}
}

func TestParseDatagramTooLarge(t *testing.T) {
	// RFC 9221 §3: a DATAGRAM frame (type, length and payload) larger than
	// our max_datagram_frame_size is a PROTOCOL_VIOLATION.
	p := &Parser{MaxDatagramFrameSize: 100}
	for _, hasLen := range []bool{false, true} {
		f := &DatagramFrame{HasLength: hasLen}
		f.Data = make([]byte, f.MaxDataLen(100))
		require.Equal(t, 100, f.Length())
		_, _, err := p.ParseNext(f.Append(nil))
		require.NoError(t, err)
		f.Data = append(f.Data, 0)
		_, _, err = p.ParseNext(f.Append(nil))
		requireCode(t, err, ProtocolViolation)
	}
}

func TestParseEmptyPayload(t *testing.T) {
	_, _, err := fullParser().ParseNext(nil)
	requireCode(t, err, FrameEncodingError)
}

func TestParsedSlicesDoNotExtendIntoNextFrame(t *testing.T) {
	b := (&StreamFrame{StreamID: 1, Data: []byte("ab"), HasLength: true}).Append(nil)
	b = (&MaxDataFrame{MaximumData: 1}).Append(b)
	f, _, err := fullParser().ParseNext(b)
	require.NoError(t, err)
	require.Equal(t, 2, cap(f.(*StreamFrame).Data))
}

func TestStreamFrameMaxDataLen(t *testing.T) {
	buf := make([]byte, 20001)
	for _, f := range []StreamFrame{
		{StreamID: 0},
		{StreamID: 1 << 40, Offset: 1 << 20},
		{StreamID: 3, Offset: 10, HasLength: true},
		{StreamID: 1 << 40, Offset: 1 << 40, HasLength: true},
	} {
		for size := range 20000 {
			n := f.MaxDataLen(size)
			f.Data = buf[:n]
			if l := f.Length(); l > size && n > 0 {
				t.Fatalf("%+v: %d bytes of data make %d > %d", f, n, l, size)
			}
			f.Data = buf[:n+1]
			if l := f.Length(); l <= size {
				t.Fatalf("%+v: %d bytes of data also fit in %d", f, n+1, size)
			}
		}
	}
}

func TestDatagramFrameMaxDataLen(t *testing.T) {
	buf := make([]byte, 20001)
	for _, hasLen := range []bool{false, true} {
		f := DatagramFrame{HasLength: hasLen}
		for size := 2; size < 20000; size++ {
			n := f.MaxDataLen(size)
			f.Data = buf[:n]
			if l := f.Length(); l > size {
				t.Fatalf("%+v: %d bytes of data make %d > %d", f, n, l, size)
			}
			f.Data = buf[:n+1]
			if l := f.Length(); l <= size {
				t.Fatalf("%+v: %d bytes of data also fit in %d", f, n+1, size)
			}
		}
		require.Zero(t, f.MaxDataLen(0))
		require.Zero(t, f.MaxDataLen(1))
	}
}
