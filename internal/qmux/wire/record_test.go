package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/quic-go/quic-go/quicvarint"
	"github.com/stretchr/testify/require"
)

func TestAppendRecordHeader(t *testing.T) {
	require.Equal(t, []byte{0x01}, AppendRecordHeader(nil, 1))
	require.Equal(t, []byte{0x40, 0x40}, AppendRecordHeader(nil, 64))
	require.Equal(t, []byte{0x7f, 0xfe}, AppendRecordHeader(nil, DefaultMaxRecordSize))
	require.Panics(t, func() { AppendRecordHeader(nil, 0) })
}

func TestSizeFieldLen(t *testing.T) {
	require.Equal(t, 2, SizeFieldLen(DefaultMaxRecordSize))
	require.Equal(t, 2, SizeFieldLen(16383))
	require.Equal(t, 4, SizeFieldLen(16384))
	require.Equal(t, 4, SizeFieldLen(MaxSupportedRecordSize))
}

func TestBeginEndRecord(t *testing.T) {
	b, start := BeginRecord([]byte{0xaa}, 2)
	require.Equal(t, 1, start)
	require.Equal(t, DefaultMaxRecordSize, RecordRoom(b, start, DefaultMaxRecordSize))
	b = (&MaxDataFrame{MaximumData: 0x1234}).Append(b)
	require.Equal(t, DefaultMaxRecordSize-3, RecordRoom(b, start, DefaultMaxRecordSize))
	b = EndRecord(b, start)
	// The Size keeps its reserved 2-byte length even though 3 fits in one.
	require.Equal(t, []byte{0xaa, 0x40, 0x03, 0x10, 0x52, 0x34}, b)
}

func TestBeginEndRecordFieldLengths(t *testing.T) {
	for _, sizeLen := range []int{1, 2, 4, 8} {
		b, start := BeginRecord(nil, sizeLen)
		b = append(b, 0x00, 0x00, 0x00) // three PADDING frames
		b = EndRecord(b, start)
		require.Len(t, b, sizeLen+3)
		size, n, err := quicvarint.Parse(b)
		require.NoError(t, err)
		require.Equal(t, sizeLen, n)
		require.EqualValues(t, 3, size)
	}
}

func TestEndRecordDropsEmptyRecord(t *testing.T) {
	b, start := BeginRecord([]byte{0xaa}, 2)
	require.Equal(t, []byte{0xaa}, EndRecord(b, start))
}

func TestEndRecordPanicsWhenSizeFieldTooShort(t *testing.T) {
	b, start := BeginRecord(nil, 1)
	require.Equal(t, 63, RecordRoom(b, start, DefaultMaxRecordSize))
	b = append(b, make([]byte, 64)...)
	require.Panics(t, func() { EndRecord(b, start) })
}

func TestRecordRoomHonoursPeerLimit(t *testing.T) {
	b, start := BeginRecord(nil, 4)
	require.Equal(t, 20000, RecordRoom(b, start, 20000))
	b, start = BeginRecord(nil, 2)
	require.Equal(t, 16383, RecordRoom(b, start, 1<<20))
}

// testRecords is a stream of records of varied sizes and Size encodings,
// including non-minimal ones, with their payloads.
func testRecords(withMaxSize bool) (stream []byte, payloads [][]byte) {
	add := func(payload []byte, sizeLen int) {
		stream = quicvarint.AppendWithLen(stream, uint64(len(payload)), sizeLen)
		stream = append(stream, payload...)
		payloads = append(payloads, payload)
	}
	pattern := func(n int, seed byte) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = seed + byte(i)
		}
		return p
	}
	add([]byte{0x00}, 1)
	add(pattern(63, 1), 1)
	add(pattern(64, 2), 2)
	add(pattern(5, 3), 8) // 8-byte Size, as deployed peers send for Length
	add(pattern(300, 4), 4)
	if withMaxSize {
		add(pattern(DefaultMaxRecordSize, 5), 2)
	}
	add(pattern(1, 6), 2)
	return stream, payloads
}

func readAll(t testing.TB, rr *RecordReader) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	for {
		rec, err := rr.Next()
		if err != nil {
			return got, err
		}
		got = append(got, append([]byte{}, rec...))
	}
}

func TestRecordReaderReadsRecords(t *testing.T) {
	stream, want := testRecords(true)
	got, err := readAll(t, NewRecordReader(bytes.NewReader(stream), 0))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, want, got)
}

func TestRecordReaderSplitAtEveryByte(t *testing.T) {
	stream, want := testRecords(false)
	for i := 0; i <= len(stream); i++ {
		r := io.MultiReader(bytes.NewReader(stream[:i]), bytes.NewReader(stream[i:]))
		got, err := readAll(t, NewRecordReader(r, 0))
		require.ErrorIs(t, err, io.EOF, "split at %d", i)
		require.Equal(t, want, got, "split at %d", i)
	}
}

func TestRecordReaderOneByteReads(t *testing.T) {
	stream, want := testRecords(true)
	got, err := readAll(t, NewRecordReader(iotest.OneByteReader(bytes.NewReader(stream)), 0))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, want, got)
}

func TestRecordReaderDataWithEOF(t *testing.T) {
	stream, want := testRecords(true)
	got, err := readAll(t, NewRecordReader(iotest.DataErrReader(bytes.NewReader(stream)), 0))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, want, got)
}

// chunkReader returns its data n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestRecordReaderGrowsForLargeRecords(t *testing.T) {
	const max = 1 << 20
	var stream []byte
	var want [][]byte
	for _, n := range []int{max, 100, recordReadBufferSize - 3, recordReadBufferSize + 1, max} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		stream = AppendRecordHeader(stream, uint64(n))
		stream = append(stream, p...)
		want = append(want, p)
	}
	for _, chunk := range []int{1000, 1 << 16, 1 << 22} {
		got, err := readAll(t, NewRecordReader(&chunkReader{data: stream, n: chunk}, max))
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, want, got)
	}
}

func TestRecordReaderClipsCapacity(t *testing.T) {
	stream := []byte{0x01, 0x00, 0x01, 0x00}
	rr := NewRecordReader(bytes.NewReader(stream), 0)
	rec, err := rr.Next()
	require.NoError(t, err)
	require.Equal(t, 1, cap(rec))
}

func TestRecordReaderRejectsEmptyRecord(t *testing.T) {
	for _, stream := range [][]byte{{0x00}, {0x40, 0x00}, {0x01, 0x00, 0x00}} {
		rr := NewRecordReader(bytes.NewReader(stream), 0)
		_, err := readAll(t, rr)
		requireCode(t, err, ProtocolViolation)
		// Errors are final.
		_, err2 := rr.Next()
		require.Equal(t, err, err2)
	}
}

// failingReader fails the test if it is read from.
type failingReader struct{ t testing.TB }

func (r failingReader) Read([]byte) (int, error) {
	r.t.Error("read past the Size of an oversize record")
	return 0, io.ErrClosedPipe
}

func TestRecordReaderRejectsOversizeRecord(t *testing.T) {
	for _, tc := range []struct {
		max  uint64
		size uint64
	}{
		{0, DefaultMaxRecordSize + 1},
		{DefaultMaxRecordSize, DefaultMaxRecordSize + 1},
		{100, DefaultMaxRecordSize + 1}, // values below the default are raised to it
		{20000, 20001},
		{20000, quicvarint.Max},
	} {
		// The record is rejected from its Size alone, before its frames
		// arrive: the reader must not wait for (or buffer) them.
		r := io.MultiReader(bytes.NewReader(AppendRecordHeader(nil, tc.size)), failingReader{t})
		_, err := NewRecordReader(r, tc.max).Next()
		requireCode(t, err, FrameEncodingError)
	}
}

func TestRecordReaderAcceptsMaxSizeRecord(t *testing.T) {
	stream := AppendRecordHeader(nil, 20000)
	stream = append(stream, make([]byte, 20000)...)
	rec, err := NewRecordReader(bytes.NewReader(stream), 20000).Next()
	require.NoError(t, err)
	require.Len(t, rec, 20000)
}

func TestRecordReaderEndOfStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty", nil, io.EOF},
		{"inside Size", []byte{0x40}, io.ErrUnexpectedEOF},
		{"inside 8-byte Size", []byte{0xc0, 0, 0, 0}, io.ErrUnexpectedEOF},
		{"inside Frames", []byte{0x03, 0x00, 0x00}, io.ErrUnexpectedEOF},
		{"after record", []byte{0x01, 0x00}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := NewRecordReader(bytes.NewReader(tc.stream), 0)
			_, err := readAll(t, rr)
			require.Equal(t, tc.want, err)
			_, err = rr.Next()
			require.Equal(t, tc.want, err)
		})
	}
}

func TestRecordReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader([]byte{0x01, 0x00, 0x02}), iotest.ErrReader(boom))
	rr := NewRecordReader(r, 0)
	rec, err := rr.Next()
	require.NoError(t, err)
	require.Equal(t, []byte{0x00}, rec)
	_, err = rr.Next()
	require.ErrorIs(t, err, boom)
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestRecordReaderNoProgress(t *testing.T) {
	_, err := NewRecordReader(emptyReader{}, 0).Next()
	require.ErrorIs(t, err, io.ErrNoProgress)
}

func TestNewRecordReaderPanicsAboveSupportedSize(t *testing.T) {
	require.Panics(t, func() { NewRecordReader(emptyReader{}, MaxSupportedRecordSize+1) })
}

func TestRecordReaderRoundTripWithWriter(t *testing.T) {
	// Records written with BeginRecord/EndRecord read back as written.
	var stream []byte
	var want [][]byte
	for i := range 20 {
		b, start := BeginRecord(stream, 2)
		f := StreamFrame{StreamID: uint64(i), Data: bytes.Repeat([]byte{byte(i)}, i*700)}
		f.Data = f.Data[:min(len(f.Data), f.MaxDataLen(RecordRoom(b, start, DefaultMaxRecordSize)))]
		b = f.Append(b)
		want = append(want, b[start+2:])
		stream = EndRecord(b, start)
	}
	got, err := readAll(t, NewRecordReader(iotest.HalfReader(bytes.NewReader(stream)), 0))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, want, got)
}

// scriptedReader hands out one chunk per Read and lets the test look at the RecordReader at
// each Read (which runs on the reading goroutine, inside Next).
type scriptedReader struct {
	chunks [][]byte
	onRead func(p []byte)
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	s.onRead(p)
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if s.chunks[0] = s.chunks[0][n:]; len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func TestRecordReaderHoldsNoBufferWhileIdle(t *testing.T) {
	rec := func(n int) []byte {
		b, start := BeginRecord(nil, 2)
		b = append(b, bytes.Repeat([]byte{0x00}, n)...) // PADDING frames
		return EndRecord(b, start)
	}
	big := rec(DefaultMaxRecordSize)
	src := &scriptedReader{chunks: [][]byte{rec(10), append(append([]byte{}, big...), rec(20)...)}}
	rr := NewRecordReader(src, 0)
	var idleReads, bufferedReads int
	src.onRead = func(p []byte) {
		if rr.start == rr.end {
			require.Nil(t, rr.buf, "an idle reader waits without its read buffer")
			require.Len(t, p, idleReadSize)
			idleReads++
		} else {
			require.NotNil(t, rr.buf)
			bufferedReads++
		}
	}
	for _, want := range []int{10, DefaultMaxRecordSize, 20} {
		got, err := rr.Next()
		require.NoError(t, err)
		require.Len(t, got, want)
	}
	_, err := rr.Next()
	require.Equal(t, io.EOF, err)
	require.Equal(t, 3, idleReads, "before each burst and at the end")
	require.Positive(t, bufferedReads, "a record longer than the idle read continues in the big buffer")
}
