package framing

import (
	"encoding/binary"
	"io"
	"net"
)

const (
	// minWriteBuffer is the Writer buffer's first capacity, so that the first
	// few small messages do not each trigger a reallocation.
	minWriteBuffer = 4 << 10

	// maxRetainedWriteBuffer is the largest buffer a Writer keeps after a
	// flush. A buffer that grew past it, because of one large message or a
	// long queue, is released so it does not pin memory for the stream's
	// lifetime.
	maxRetainedWriteBuffer = 1 << 20
)

// Writer frames messages onto an [io.Writer], coalescing queued messages into
// a single write.
//
// If a write to the destination fails, the error is sticky: every later
// Queue, Flush and WriteMessage returns it, because the destination may hold
// a partial message. [Writer.Reset] clears it.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	dst  io.Writer
	max  uint32
	buf  []byte      // framed messages queued since the last flush
	vec  net.Buffers // scratch for WriteMessage's header+payload write
	pair [2][]byte   // backing array for vec, so that it never allocates
	err  error       // sticky write error
}

// NewWriter returns a Writer that frames messages onto w, refusing any
// message longer than maxSize bytes with a [*TooLargeError]. A maxSize of 0
// means [DefaultMaxMessageSize].
func NewWriter(w io.Writer, maxSize uint32) *Writer {
	return &Writer{dst: w, max: effectiveMax(maxSize)}
}

// Buffered returns the number of bytes queued but not yet flushed, headers
// included.
func (w *Writer) Buffered() int {
	return len(w.buf)
}

// Queue frames msg into the Writer's buffer without writing to the
// destination; [Writer.Flush] sends it. The payload is copied, so the caller
// may reuse msg once Queue returns. Once the buffer has grown to fit the
// traffic, Queue does not allocate.
//
// A message longer than the limit is refused with a [*TooLargeError] and
// nothing is queued.
func (w *Writer) Queue(msg []byte) error {
	if w.err != nil {
		return w.err
	}
	if err := checkSize(len(msg), w.max); err != nil {
		return err
	}
	w.reserve(HeaderSize + len(msg))
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(msg)))
	w.buf = append(w.buf, msg...)
	return nil
}

// Flush writes every queued message to the destination in one Write call and
// empties the buffer. It does nothing if no message is queued.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.dst.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	w.clear()
	if err != nil {
		w.err = err
	}
	return err
}

// WriteMessage frames msg and writes it, together with any queued messages,
// to the destination. It is equivalent to [Writer.Queue] followed by
// [Writer.Flush], except that a payload of 64 KiB or more is not copied into
// the buffer: the buffer (queued messages and the header) and the payload are
// written one after the other, or in a single vectored write when the
// destination supports it (see [net.Buffers]).
//
// A message longer than the limit is refused with a [*TooLargeError] and
// nothing is written, not even previously queued messages.
func (w *Writer) WriteMessage(msg []byte) error {
	if len(msg) < DirectWriteSize {
		if err := w.Queue(msg); err != nil {
			return err
		}
		return w.Flush()
	}
	if w.err != nil {
		return w.err
	}
	if err := checkSize(len(msg), w.max); err != nil {
		return err
	}
	w.reserve(HeaderSize)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(msg)))
	want := int64(len(w.buf) + len(msg))
	w.pair = [2][]byte{w.buf, msg}
	w.vec = w.pair[:]
	n, err := w.vec.WriteTo(w.dst)
	// net.Buffers.WriteTo ignores a short write that comes without an error
	// (which breaks the io.Writer contract); count bytes to catch it.
	if err == nil && n < want {
		err = io.ErrShortWrite
	}
	w.pair = [2][]byte{} // do not keep the caller's payload reachable
	w.vec = nil
	w.clear()
	if err != nil {
		w.err = err
	}
	return err
}

// Reset discards any queued data and sticky error, and makes the Writer
// write to dst, keeping its buffer and size limit. It lets a pool reuse
// Writers across streams.
func (w *Writer) Reset(dst io.Writer) {
	w.dst = dst
	w.err = nil
	w.clear()
}

// reserve ensures the buffer can take n more bytes, growing it with at least
// doubling so that a run of Queue calls allocates O(log n) times.
func (w *Writer) reserve(n int) {
	if cap(w.buf)-len(w.buf) >= n {
		return
	}
	grown := make([]byte, len(w.buf), max(2*cap(w.buf), len(w.buf)+n, minWriteBuffer))
	copy(grown, w.buf)
	w.buf = grown
}

// clear empties the buffer, releasing it if it grew too large to keep.
func (w *Writer) clear() {
	if cap(w.buf) > maxRetainedWriteBuffer {
		w.buf = nil
		return
	}
	w.buf = w.buf[:0]
}
