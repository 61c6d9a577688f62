package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func FuzzRecordReader(f *testing.F) {
	stream, _ := testRecords(false)
	f.Add(stream, uint8(0))
	f.Add(stream, uint8(3))
	f.Add(unhex(f, deployedFirstRecord), uint8(1))
	f.Add([]byte{0x00}, uint8(0))
	f.Add([]byte{0x7f, 0xff, 0x00}, uint8(0))
	f.Add([]byte{0x40}, uint8(5))
	var b []byte
	for _, fr := range allFrames()[:50] {
		rec, start := BeginRecord(b, 2)
		b = EndRecord(fr.Append(rec), start)
	}
	f.Add(b, uint8(7))

	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole, wholeErr := readRecords(NewRecordReader(bytes.NewReader(data), 0))
		var r io.Reader = &chunkReader{data: data, n: int(chunk) + 1}
		if chunk == 0 {
			r = iotest.OneByteReader(bytes.NewReader(data))
		}
		split, splitErr := readRecords(NewRecordReader(r, 0))
		// How the stream is split across reads changes nothing.
		require.Equal(t, whole, split)
		require.Equal(t, wholeErr, splitErr)
		checkRecordErr(t, wholeErr)

		// Records written back read back the same.
		var again []byte
		for _, rec := range whole {
			require.NotEmpty(t, rec)
			require.LessOrEqual(t, len(rec), DefaultMaxRecordSize)
			again = AppendRecordHeader(again, uint64(len(rec)))
			again = append(again, rec...)
		}
		reread, err := readRecords(NewRecordReader(bytes.NewReader(again), 0))
		require.Equal(t, io.EOF, err)
		require.Equal(t, whole, reread)
	})
}

func readRecords(rr *RecordReader) ([][]byte, error) {
	var recs [][]byte
	for {
		rec, err := rr.Next()
		if err != nil {
			return recs, err
		}
		recs = append(recs, append([]byte{}, rec...))
	}
}

func checkRecordErr(t *testing.T, err error) {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return
	}
	var e *Error
	require.True(t, errors.As(err, &e), "unexpected error %v", err)
	require.Contains(t, []TransportErrorCode{ProtocolViolation, FrameEncodingError}, e.Code)
}

func FuzzFrames(f *testing.F) {
	for _, fr := range allFrames() {
		if fr.Length() < 1000 {
			f.Add(fr.Append(nil))
		}
	}
	f.Add(unhex(f, deployedFirstRecord)[2:])
	var b []byte
	for _, fr := range []Frame{
		&PaddingFrame{Count: 3},
		&MaxDataFrame{MaximumData: 1000},
		&StreamFrame{StreamID: 4, Offset: 10, Data: []byte("abc"), HasLength: true},
		&PingFrame{Sequence: 1},
		&ConnectionCloseFrame{ErrorCode: 7, FrameType: 8, Reason: []byte("x")},
		&StreamFrame{StreamID: 8, Data: []byte("tail"), Fin: true},
	} {
		b = fr.Append(b)
	}
	f.Add(b)

	f.Fuzz(func(t *testing.T, payload []byte) {
		p := &Parser{MaxDatagramFrameSize: 1000, ResetStreamAt: true}
		var frames []Frame
		for b := payload; len(b) > 0; {
			fr, n, err := p.ParseNext(b)
			if err != nil {
				var e *Error
				require.True(t, errors.As(err, &e), "unexpected error %v", err)
				require.Contains(t, []TransportErrorCode{FrameEncodingError, ProtocolViolation, TransportParameterError}, e.Code)
				break
			}
			require.Positive(t, n)
			require.LessOrEqual(t, n, len(b))
			// Our encoding is never longer than the peer's: it may have
			// used non-minimal varints, an OFF bit with offset 0, unknown or
			// default-valued transport parameters.
			require.LessOrEqual(t, fr.Length(), n)
			frames = append(frames, cloneFrame(fr))
			b = b[n:]
		}

		// Re-encoding the frames and parsing them again gives the same frames.
		var enc []byte
		for _, fr := range frames {
			before := len(enc)
			enc = fr.Append(enc)
			require.Equal(t, fr.Length(), len(enc)-before)
		}
		var again []Frame
		for b := enc; len(b) > 0; {
			fr, n, err := p.ParseNext(b)
			require.NoError(t, err)
			again = append(again, cloneFrame(fr))
			b = b[n:]
		}
		require.Equal(t, frames, again)
	})
}

func FuzzTransportParameters(f *testing.F) {
	f.Add(unhex(f, deployedFirstRecord)[19:])
	tp := testTransportParameters()
	f.Add(tp.Append(nil))
	tp.MaxDatagramFrameSize = 1200
	tp.ResetStreamAt = true
	f.Add(tp.Append(nil))
	f.Add(unhex(f, "1b00 0901 03 c571c59429cd0845 02 7ffe"))
	f.Add(unhex(f, "0102 6711"))

	f.Fuzz(func(t *testing.T, data []byte) {
		var p TransportParameters
		if err := p.Parse(data); err != nil {
			requireCode(t, err, TransportParameterError)
			return
		}
		require.NoError(t, p.Validate())
		b := p.Append(nil)
		require.Len(t, b, p.Length())
		var q TransportParameters
		require.NoError(t, q.Parse(b))
		require.Equal(t, p, q)
	})
}
