package wire

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/quic-go/quic-go/quicvarint"
	"github.com/stretchr/testify/require"
)

// splitPayload is a record's payload split into the head a reader holds and the bytes to come.
func splitPayload(payload []byte, head int) ([]byte, int) { return payload[:head], len(payload) - head }

func TestParseStreamHeadMatchesParseNext(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	for _, f := range []*StreamFrame{
		{StreamID: 4, Data: data},
		{StreamID: 4, Offset: 1 << 20, Data: data, Fin: true},
		{StreamID: 1 << 40, Offset: 7, Data: data, HasLength: true},
		{StreamID: 2, Data: data[:100], HasLength: true, Fin: true},
	} {
		payload := f.Append(nil)
		var want Parser
		wf, n, err := want.ParseNext(payload)
		require.NoError(t, err)
		require.Equal(t, len(payload), n)
		for _, head := range []int{f.Length() - len(f.Data) + 1, 50, len(payload) - 1} {
			h, more := splitPayload(payload, head)
			var p Parser
			got, dataLen, ok := p.ParseStreamHead(h, more)
			require.True(t, ok, "head %d of %+v", head, f)
			w := wf.(*StreamFrame)
			require.Equal(t, len(w.Data), dataLen)
			require.Equal(t, w.StreamID, got.StreamID)
			require.Equal(t, w.Offset, got.Offset)
			require.Equal(t, w.Fin, got.Fin)
			require.Equal(t, w.HasLength, got.HasLength)
			require.Equal(t, w.Data[:len(got.Data)], got.Data, "the buffered part of the data")
			require.Equal(t, len(h), len(payload)-dataLen+len(got.Data))
		}
	}
}

func TestParseStreamHeadDeclines(t *testing.T) {
	data := make([]byte, 1000)
	stream := (&StreamFrame{StreamID: 4, Offset: 9, Data: data, HasLength: true}).Append(nil)
	for name, c := range map[string]struct {
		head []byte
		more int
	}{
		"not a STREAM frame":   {(&MaxDataFrame{MaximumData: 5}).Append(nil), 10},
		"header cut":           {stream[:3], len(stream) - 3},
		"data ends earlier":    {stream[:20], len(stream) - 20 + 1},
		"data beyond record":   {stream[:20], len(stream) - 20 - 1},
		"nothing to come":      {stream, 0},
		"empty head":           {nil, 10},
		"type not minimal":     {append([]byte{0x40, 0x08}, stream[1:20]...), 100},
		"offset beyond 2^62-1": {quicvarint.Append([]byte{0x0c, 4}, quicvarint.Max), 2},
	} {
		var p Parser
		_, _, ok := p.ParseStreamHead(c.head, c.more)
		require.False(t, ok, name)
	}
}

// readWithHead reads every record with Head, completing incomplete ones with ReadRest or,
// when useNext says so, Next; it returns the records' payloads.
func readWithHead(rr *RecordReader, useNext func(i int) bool) ([][]byte, error) {
	var recs [][]byte
	for i := 0; ; i++ {
		frames, more, err := rr.Head()
		if err != nil {
			return recs, err
		}
		rec := append([]byte{}, frames...)
		if more > 0 {
			if useNext(i) {
				full, err := rr.Next()
				if err != nil {
					return recs, err
				}
				rec = append([]byte{}, full...)
			} else {
				rest := make([]byte, more)
				if err := rr.ReadRest(rest); err != nil {
					return recs, err
				}
				rec = append(rec, rest...)
			}
		}
		recs = append(recs, rec)
	}
}

func TestRecordReaderHeadReadRest(t *testing.T) {
	stream, payloads := testRecords(false)
	for _, chunk := range []int{1, 3, 100, 5000, len(stream)} {
		for name, useNext := range map[string]func(int) bool{
			"ReadRest": func(int) bool { return false },
			"Next":     func(int) bool { return true },
			"both":     func(i int) bool { return i%2 == 0 },
		} {
			recs, err := readWithHead(NewRecordReader(&chunkReader{data: stream, n: chunk}, 0), useNext)
			require.Equal(t, io.EOF, err, "chunk %d %s", chunk, name)
			require.Equal(t, payloads, recs, "chunk %d %s", chunk, name)
		}
	}
}

func TestRecordReaderHeadCompleteRecord(t *testing.T) {
	rec := AppendRecordHeader(nil, 3)
	rec = append(rec, 0x1c, 1, 0) // MAX_DATA... any three bytes: the reader does not parse
	rr := NewRecordReader(bytes.NewReader(rec), 0)
	frames, more, err := rr.Head()
	require.NoError(t, err)
	require.Zero(t, more)
	require.Equal(t, rec[1:], frames)
	_, _, err = rr.Head()
	require.Equal(t, io.EOF, err)
}

func TestRecordReaderReadRestErrors(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 10000)
	stream := append(AppendRecordHeader(nil, uint64(len(payload))), payload...)

	// The stream ends inside the rest of the record.
	rr := NewRecordReader(iotest.HalfReader(bytes.NewReader(stream[:5000])), 0)
	_, more, err := rr.Head()
	require.NoError(t, err)
	require.Positive(t, more)
	require.Equal(t, io.ErrUnexpectedEOF, rr.ReadRest(make([]byte, more)))
	_, err = rr.Next()
	require.Equal(t, io.ErrUnexpectedEOF, err, "errors are final")

	// An end of stream with the record's last bytes is reported by the next call.
	rr = NewRecordReader(iotest.DataErrReader(bytes.NewReader(stream)), 0)
	frames, more, err := rr.Head()
	require.NoError(t, err)
	if more > 0 {
		require.NoError(t, rr.ReadRest(make([]byte, more)))
	} else {
		require.Len(t, frames, len(payload))
	}
	_, _, err = rr.Head()
	require.Equal(t, io.EOF, err)

	// A source that returns nothing.
	rr = NewRecordReader(io.MultiReader(bytes.NewReader(stream[:100]), emptyReader{}), 0)
	_, more, err = rr.Head()
	require.NoError(t, err)
	require.Equal(t, io.ErrNoProgress, rr.ReadRest(make([]byte, more)))
}

func TestReadRestWithoutHeadPanics(t *testing.T) {
	rr := NewRecordReader(bytes.NewReader(nil), 0)
	require.Panics(t, func() { _ = rr.ReadRest(make([]byte, 1)) })
}

func FuzzRecordReaderHead(f *testing.F) {
	stream, _ := testRecords(false)
	f.Add(stream, uint8(0), uint8(0))
	f.Add(stream, uint8(3), uint8(0x55))
	f.Add(unhex(f, deployedFirstRecord), uint8(1), uint8(1))
	f.Add([]byte{0x40}, uint8(5), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk, pattern uint8) {
		whole, wholeErr := readRecords(NewRecordReader(bytes.NewReader(data), 0))
		var r io.Reader = &chunkReader{data: data, n: int(chunk) + 1}
		if chunk == 0 {
			r = iotest.OneByteReader(bytes.NewReader(data))
		}
		// Completing records with ReadRest or Next, in any mix, reads the same records.
		recs, err := readWithHead(NewRecordReader(r, 0), func(i int) bool { return pattern>>(i%8)&1 == 1 })
		require.Equal(t, wholeErr, err)
		if len(whole) == 0 {
			require.Empty(t, recs)
		} else {
			require.Equal(t, whole, recs)
		}
		// A STREAM frame's head agrees with the whole frame.
		for _, rec := range whole {
			var p, q Parser
			for _, cut := range []int{1, len(rec) / 2, len(rec) - 1} {
				if cut < 1 || cut >= len(rec) {
					continue
				}
				hf, dataLen, ok := p.ParseStreamHead(rec[:cut], len(rec)-cut)
				if !ok {
					continue
				}
				wf, n, err := q.ParseNext(rec)
				require.NoError(t, err)
				require.Equal(t, len(rec), n, "the frame runs to the end of the record")
				sf := wf.(*StreamFrame)
				require.Equal(t, len(sf.Data), dataLen)
				require.Equal(t, sf.StreamID, hf.StreamID)
				require.Equal(t, sf.Offset, hf.Offset)
				require.Equal(t, sf.Fin, hf.Fin)
				require.Equal(t, sf.Data[:len(hf.Data)], hf.Data)
			}
		}
	})
}

// HeadResumable and ReadRestResumable return timeouts without making them final, wherever
// they fall, and the next call (ReadRestResumable with resume set inside a record's rest)
// goes on as if they had not happened.
func TestRecordReaderResumableHeadAndRest(t *testing.T) {
	stream, payloads := testRecords(false)
	for _, cut := range []int{1, 3, 100, 5000} {
		rr := NewRecordReader(timeoutsEvery(stream, cut), 0)
		var recs [][]byte
		headTimeouts, restTimeouts, rests := 0, 0, 0
		for {
			frames, more, err := rr.HeadResumable()
			if IsTimeout(err) {
				headTimeouts++
				continue
			}
			if err == io.EOF {
				break
			}
			require.NoError(t, err, "cut %d", cut)
			rec := append([]byte{}, frames...)
			if more > 0 {
				rests++
				rest := make([]byte, more)
				got, resume := 0, false
				for got < len(rest) {
					n, err := rr.ReadRestResumable(rest[got:], resume)
					got += n
					if IsTimeout(err) {
						restTimeouts++
						resume = true
						continue
					}
					require.NoError(t, err, "cut %d", cut)
					require.Equal(t, len(rest), got, "cut %d", cut)
				}
				rec = append(rec, rest...)
			}
			recs = append(recs, rec)
		}
		require.Equal(t, payloads, recs, "cut %d", cut)
		require.Positive(t, headTimeouts, "cut %d", cut)
		if cut < 5000 {
			require.Positive(t, rests, "cut %d", cut)
			require.Positive(t, restTimeouts, "cut %d", cut)
		}
	}
	// ReadRest, by contrast, keeps a timeout as its final error.
	rec := append(AppendRecordHeader(nil, 3000), bytes.Repeat([]byte{0}, 3000)...)
	rr := NewRecordReader(&timeoutReader{pieces: [][]byte{rec[:100], rec[100:]}}, 0)
	_, _, err := rr.HeadResumable()
	require.True(t, IsTimeout(err))
	_, more, err := rr.HeadResumable()
	require.NoError(t, err)
	require.Positive(t, more)
	require.True(t, IsTimeout(rr.ReadRest(make([]byte, more))))
	_, err = rr.Next()
	require.True(t, IsTimeout(err), "final")
}
