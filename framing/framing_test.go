package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// encode frames msgs with AppendMessage under the largest limit.
func encode(t testing.TB, msgs ...[]byte) []byte {
	t.Helper()
	var out []byte
	for _, m := range msgs {
		var err error
		out, err = AppendMessage(out, m, MaxMessageSizeLimit)
		require.NoError(t, err)
	}
	return out
}

// header returns a bare length prefix.
func header(n uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, n)
}

// pattern returns n bytes of non-repeating-looking content, so that a
// misplaced slice shows up as a mismatch.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// countingWriter records every Write call.
type countingWriter struct {
	writes [][]byte // the slices as passed, not copies
	data   bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, p)
	return c.data.Write(p)
}

// countingReader counts bytes handed out by the underlying reader.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// failReader fails the test if it is read at all.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("read past the oversize header")
	return 0, errors.New("read past the oversize header")
}

func TestTooLargeError(t *testing.T) {
	err := error(&TooLargeError{Size: 20 << 20, Max: 16 << 20})
	require.EqualError(t, err, "framing: message of 20971520 bytes exceeds the maximum of 16777216")
	require.ErrorIs(t, err, ErrTooLarge)
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, uint64(20<<20), tl.Size)
	require.NotErrorIs(t, err, io.EOF)
}

func TestAppendMessage(t *testing.T) {
	dst := []byte("prefix")
	out, err := AppendMessage(dst, []byte("abc"), 0)
	require.NoError(t, err)
	require.Equal(t, []byte("prefix\x00\x00\x00\x03abc"), out)

	out, err = AppendMessage(nil, nil, 0)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 0, 0}, out)
}

func TestAppendMessageTooLarge(t *testing.T) {
	dst := []byte("prefix")
	out, err := AppendMessage(dst, make([]byte, 11), 10)
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, TooLargeError{Size: 11, Max: 10}, *tl)
	require.Equal(t, dst, out)
}

func TestRoundTripSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		max  uint32
	}{
		{"empty", 0, 0},
		{"one byte", 1, 0},
		{"256 B", 256, 0},
		{"just under buffer", readBufferSize - 1, 0},
		{"buffer", readBufferSize, 0},
		{"1 MiB", 1 << 20, 0},
		{"exactly default max", DefaultMaxMessageSize, 0},
		{"exactly custom max", 1000, 1000},
		{"exactly max of 1", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := pattern(tc.size)
			var stream bytes.Buffer
			w := NewWriter(&stream, tc.max)
			require.NoError(t, w.WriteMessage(msg))
			require.NoError(t, w.WriteMessage(msg)) // a second copy checks the boundary
			require.Equal(t, 2*(HeaderSize+tc.size), stream.Len())

			r := NewReader(&stream, tc.max)
			for range 2 {
				got, err := r.ReadMessage()
				require.NoError(t, err)
				require.NotNil(t, got)
				require.Len(t, got, tc.size)
				require.Equal(t, tc.size, cap(got), "payload slice must not carry slack")
				require.True(t, bytes.Equal(msg, got))
			}
			_, err := r.ReadMessage()
			require.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestReaderTooLargeReadsOnlyHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  uint32
		size uint32
	}{
		{"default max + 1", 0, DefaultMaxMessageSize + 1},
		{"custom max + 1", 1000, 1001},
		{"largest header", 0, MaxMessageSizeLimit},
		{"max - 1 + 1", MaxMessageSizeLimit - 1, MaxMessageSizeLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: io.MultiReader(bytes.NewReader(header(tc.size)), failReader{t})}
			r := NewReader(src, tc.max)
			_, err := r.ReadMessage()
			var tl *TooLargeError
			require.ErrorAs(t, err, &tl)
			require.ErrorIs(t, err, ErrTooLarge)
			require.Equal(t, uint64(tc.size), tl.Size)
			require.Equal(t, uint64(effectiveMax(tc.max)), tl.Max)
			require.Equal(t, HeaderSize, src.n, "only the header may be consumed")

			// The error is sticky: the stream is not at a boundary any more.
			_, err2 := r.ReadMessage()
			require.Same(t, err, err2)
		})
	}
}

func TestReaderTooLargeDoesNotAllocatePayload(t *testing.T) {
	// The payload is present, so a reader that allocated or read before
	// checking would be caught by the byte count below.
	stream := append(header(DefaultMaxMessageSize+1), make([]byte, 1<<20)...)
	allocated := bytesAllocated(func() {
		r := NewReader(bytes.NewReader(stream), 0)
		_, err := r.ReadMessage()
		require.ErrorIs(t, err, ErrTooLarge)
	})
	// The read buffer (64 KiB) and the error are all that may be allocated.
	require.Less(t, allocated, uint64(256<<10))
}

func TestReaderAllocationFollowsData(t *testing.T) {
	// A header announcing the largest message the limit allows, followed by
	// only a little data: memory must track the data, not the claim.
	stream := append(header(effectiveMax(MaxMessageSizeLimit)), make([]byte, 100)...)
	allocated := bytesAllocated(func() {
		r := NewReader(bytes.NewReader(stream), MaxMessageSizeLimit)
		_, err := r.ReadMessage()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
	require.Less(t, allocated, uint64(1<<20))
}

func TestReaderCleanEOF(t *testing.T) {
	r := NewReader(bytes.NewReader(nil), 0)
	_, err := r.ReadMessage()
	require.Equal(t, io.EOF, err)
	_, err = r.ReadMessage()
	require.Equal(t, io.EOF, err, "EOF is sticky")
}

func TestReaderUnexpectedEOF(t *testing.T) {
	full := encode(t, []byte("hello"))
	for _, tc := range []struct {
		name   string
		stream []byte
	}{
		{"one header byte", full[:1]},
		{"three header bytes", full[:3]},
		{"header only", full[:HeaderSize]},
		{"partial payload", full[:len(full)-1]},
		{"second message header cut", append(encode(t, []byte("a")), 0, 0)},
		{"large payload cut", append(header(4<<20), make([]byte, 3<<20)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.stream), 0)
			var err error
			for err == nil {
				_, err = r.ReadMessage()
			}
			require.Equal(t, io.ErrUnexpectedEOF, err)
		})
	}
}

func TestReaderOneByteAtATime(t *testing.T) {
	msgs := [][]byte{{}, []byte("x"), pattern(300), {}, pattern(readBufferSize + 10)}
	r := NewReader(iotest.OneByteReader(bytes.NewReader(encode(t, msgs...))), 0)
	for _, want := range msgs {
		got, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := r.ReadMessage()
	require.Equal(t, io.EOF, err)
}

func TestReaderDataWithEOF(t *testing.T) {
	// DataErrReader returns the final data together with io.EOF: the last
	// message must still be delivered, and then a clean EOF.
	msgs := [][]byte{[]byte("first"), pattern(readBufferSize * 2), []byte("last")}
	r := NewReader(iotest.DataErrReader(bytes.NewReader(encode(t, msgs...))), 0)
	for _, want := range msgs {
		got, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := r.ReadMessage()
	require.Equal(t, io.EOF, err)
}

func TestReaderHalfReads(t *testing.T) {
	msgs := [][]byte{pattern(10), pattern(200_000), pattern(5)}
	r := NewReader(iotest.HalfReader(bytes.NewReader(encode(t, msgs...))), 0)
	for _, want := range msgs {
		got, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

func TestReaderSourceErrorIsSticky(t *testing.T) {
	// TimeoutReader fails its second read: mid-message here.
	stream := append(header(10), 1, 2, 3)
	r := NewReader(iotest.TimeoutReader(bytes.NewReader(stream)), 0)
	_, err := r.ReadMessage()
	require.ErrorIs(t, err, iotest.ErrTimeout)
	_, err = r.ReadMessage()
	require.ErrorIs(t, err, iotest.ErrTimeout)
}

func TestReaderSourceErrorAtBoundary(t *testing.T) {
	boom := errors.New("stream reset")
	src := io.MultiReader(bytes.NewReader(encode(t, []byte("ok"))), iotest.ErrReader(boom))
	r := NewReader(src, 0)
	got, err := r.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, []byte("ok"), got)
	_, err = r.ReadMessage()
	require.Equal(t, boom, err, "a non-EOF error is returned as is")
}

type emptyReader struct{ calls int }

func (e *emptyReader) Read([]byte) (int, error) {
	e.calls++
	return 0, nil
}

func TestReaderNoProgress(t *testing.T) {
	src := &emptyReader{}
	r := NewReader(src, 0)
	_, err := r.ReadMessage()
	require.Equal(t, io.ErrNoProgress, err)
	require.Equal(t, maxConsecutiveEmptyReads, src.calls)
}

type badCountReader struct{ n int }

func (b badCountReader) Read(p []byte) (int, error) { return b.n, nil }

func TestReaderInvalidCount(t *testing.T) {
	for _, n := range []int{-1, readBufferSize + 1} {
		r := NewReader(badCountReader{n}, 0)
		_, err := r.ReadMessage()
		require.ErrorIs(t, err, errInvalidRead)
	}
}

func TestReaderBuffered(t *testing.T) {
	stream := encode(t, []byte("one"), []byte("two"))
	r := NewReader(bytes.NewReader(stream), 0)
	require.Zero(t, r.Buffered())
	_, err := r.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, HeaderSize+3, r.Buffered(), "the second message arrived with the first read")
	_, err = r.ReadMessage()
	require.NoError(t, err)
	require.Zero(t, r.Buffered())
}

func TestReaderMessagesAreIndependent(t *testing.T) {
	r := NewReader(bytes.NewReader(encode(t, []byte("aaaa"), []byte("bbbb"))), 0)
	first, err := r.ReadMessage()
	require.NoError(t, err)
	second, err := r.ReadMessage()
	require.NoError(t, err)
	first[0] = 'X'
	require.Equal(t, []byte("bbbb"), second)
}

func TestWriterCoalescesQueuedMessages(t *testing.T) {
	dst := &countingWriter{}
	w := NewWriter(dst, 0)
	var msgs [][]byte
	for i := range 100 {
		msg := pattern(i * 3)
		msgs = append(msgs, msg)
		require.NoError(t, w.Queue(msg))
	}
	require.Empty(t, dst.writes, "Queue must not write")
	require.Equal(t, len(encode(t, msgs...)), w.Buffered())

	require.NoError(t, w.Flush())
	require.Len(t, dst.writes, 1)
	require.Zero(t, w.Buffered())

	r := NewReader(&dst.data, 0)
	for _, want := range msgs {
		got, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := r.ReadMessage()
	require.Equal(t, io.EOF, err)
}

func TestWriterFlushEmptyDoesNotWrite(t *testing.T) {
	dst := &countingWriter{}
	w := NewWriter(dst, 0)
	require.NoError(t, w.Flush())
	require.Empty(t, dst.writes)
}

func TestWriterEmptyMessage(t *testing.T) {
	dst := &countingWriter{}
	w := NewWriter(dst, 0)
	require.NoError(t, w.WriteMessage(nil))
	require.Equal(t, []byte{0, 0, 0, 0}, dst.data.Bytes())
}

func TestWriterRefusesOversize(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  uint32
		size int
	}{
		{"custom", 10, 11},
		{"default", 0, DefaultMaxMessageSize + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := &countingWriter{}
			w := NewWriter(dst, tc.max)
			require.NoError(t, w.Queue([]byte("queued")))
			before := w.Buffered()
			msg := make([]byte, tc.size)

			err := w.Queue(msg)
			var tl *TooLargeError
			require.ErrorAs(t, err, &tl)
			require.Equal(t, TooLargeError{Size: uint64(tc.size), Max: uint64(effectiveMax(tc.max))}, *tl)
			require.Equal(t, before, w.Buffered())

			require.ErrorIs(t, w.WriteMessage(msg), ErrTooLarge)
			require.Equal(t, before, w.Buffered())
			require.Empty(t, dst.writes, "nothing may be written")

			// Refusal is not a stream failure: the Writer stays usable.
			require.NoError(t, w.Flush())
			require.Equal(t, encode(t, []byte("queued")), dst.data.Bytes())
		})
	}
}

func TestWriterAcceptsExactlyMax(t *testing.T) {
	var dst bytes.Buffer
	w := NewWriter(&dst, 10)
	require.NoError(t, w.WriteMessage(make([]byte, 10)))
	require.Equal(t, HeaderSize+10, dst.Len())
}

func TestEffectiveMax(t *testing.T) {
	require.Equal(t, uint32(DefaultMaxMessageSize), effectiveMax(0))
	require.Equal(t, uint32(1), effectiveMax(1))
	if math.MaxInt > MaxMessageSizeLimit {
		require.Equal(t, uint32(MaxMessageSizeLimit), effectiveMax(MaxMessageSizeLimit))
	} else {
		require.Equal(t, uint32(math.MaxInt32), effectiveMax(MaxMessageSizeLimit))
	}
}

func TestMaxMessageSizeLimitAccepted(t *testing.T) {
	// The hard cap is a valid limit (on 64-bit platforms); a header
	// announcing it is accepted and the reader waits for the payload (here:
	// the stream ends).
	r := NewReader(bytes.NewReader(header(effectiveMax(MaxMessageSizeLimit))), MaxMessageSizeLimit)
	_, err := r.ReadMessage()
	require.Equal(t, io.ErrUnexpectedEOF, err)

	w := NewWriter(io.Discard, MaxMessageSizeLimit)
	require.NoError(t, w.WriteMessage(pattern(1000)))
}

func TestWriteMessageLargeDoesNotCopyPayload(t *testing.T) {
	dst := &countingWriter{}
	w := NewWriter(dst, 0)
	require.NoError(t, w.Queue([]byte("small")))
	msg := pattern(DirectWriteSize)
	require.NoError(t, w.WriteMessage(msg))

	require.Len(t, dst.writes, 2)
	require.Same(t, &msg[0], &dst.writes[1][0], "payload must be written from the caller's slice")
	require.Less(t, cap(w.buf), DirectWriteSize, "payload must not be copied into the buffer")
	require.Zero(t, w.Buffered())
	require.Nil(t, w.pair[1], "the caller's payload must not stay reachable")

	r := NewReader(&dst.data, 0)
	got, err := r.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, []byte("small"), got)
	got, err = r.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, msg, got)
}

func TestWriterReleasesHugeBuffer(t *testing.T) {
	w := NewWriter(io.Discard, 0)
	require.NoError(t, w.Queue(make([]byte, 2<<20)))
	require.Greater(t, cap(w.buf), maxRetainedWriteBuffer)
	require.NoError(t, w.Flush())
	require.LessOrEqual(t, cap(w.buf), maxRetainedWriteBuffer)

	// An ordinary buffer is kept across flushes.
	require.NoError(t, w.Queue(make([]byte, 1000)))
	require.NoError(t, w.Flush())
	kept := cap(w.buf)
	require.NotZero(t, kept)
	require.NoError(t, w.Queue(make([]byte, 1000)))
	require.NoError(t, w.Flush())
	require.Equal(t, kept, cap(w.buf))
}

type errWriter struct {
	err   error
	short bool
	calls int
}

func (e *errWriter) Write(p []byte) (int, error) {
	e.calls++
	if e.short {
		return len(p) / 2, nil
	}
	return 0, e.err
}

func TestWriterErrorIsSticky(t *testing.T) {
	boom := errors.New("stream reset")
	dst := &errWriter{err: boom}
	w := NewWriter(dst, 0)
	require.NoError(t, w.Queue([]byte("a")))
	require.Equal(t, boom, w.Flush())
	require.Zero(t, w.Buffered())
	require.Equal(t, boom, w.Queue([]byte("b")))
	require.Equal(t, boom, w.Flush())
	require.Equal(t, boom, w.WriteMessage(pattern(DirectWriteSize)))
	require.Equal(t, 1, dst.calls)

	var fresh bytes.Buffer
	w.Reset(&fresh)
	require.NoError(t, w.WriteMessage([]byte("c")))
	require.Equal(t, encode(t, []byte("c")), fresh.Bytes())
}

func TestWriterShortWrite(t *testing.T) {
	w := NewWriter(&errWriter{short: true}, 0)
	require.Equal(t, io.ErrShortWrite, w.WriteMessage([]byte("abcdef")))

	w = NewWriter(&errWriter{short: true}, 0)
	require.Equal(t, io.ErrShortWrite, w.WriteMessage(pattern(DirectWriteSize)))
}

func TestWriterResetDropsQueued(t *testing.T) {
	var first, second bytes.Buffer
	w := NewWriter(&first, 0)
	require.NoError(t, w.Queue([]byte("dropped")))
	w.Reset(&second)
	require.Zero(t, w.Buffered())
	require.NoError(t, w.WriteMessage([]byte("kept")))
	require.Zero(t, first.Len())
	require.Equal(t, encode(t, []byte("kept")), second.Bytes())
}

func TestWriterSteadyStateDoesNotAllocate(t *testing.T) {
	w := NewWriter(io.Discard, 0)
	msg := pattern(256)
	require.NoError(t, w.Queue(msg)) // grow the buffer once
	require.NoError(t, w.Flush())
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.Queue(msg); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)

	allocs = testing.AllocsPerRun(100, func() {
		if err := w.WriteMessage(msg); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)

	large := pattern(DirectWriteSize)
	allocs = testing.AllocsPerRun(100, func() {
		if err := w.WriteMessage(large); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

func TestReaderSteadyStateAllocatesOnlyTheMessage(t *testing.T) {
	r := NewReader(&repeatReader{data: encode(t, pattern(256))}, 0)
	_, err := r.ReadMessage() // allocate the read buffer
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, 1.0, allocs)
}

// repeatReader returns data over and over, an endless stream of the same
// framed messages.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// ReadByte reads a header byte in front of the messages through the Reader's buffer: one
// read of the source serves both, and the messages follow intact.
func TestReaderReadByteBeforeMessages(t *testing.T) {
	stream := append([]byte{0x00}, encode(t, []byte("hi"), []byte("abc"))...)
	r := NewReader(bytes.NewReader(stream), 0)
	b, err := r.ReadByte()
	require.NoError(t, err)
	require.Equal(t, byte(0x00), b)
	require.Equal(t, len(stream)-1, r.Buffered(), "the byte came with the messages, in one read")
	for _, want := range []string{"hi", "abc"} {
		m, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, want, string(m))
	}
	_, err = r.ReadByte()
	require.ErrorIs(t, err, io.EOF)
}
