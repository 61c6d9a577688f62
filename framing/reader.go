package framing

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"
)

const (
	// readBufferSize is the size of the Reader's buffer: large enough that a
	// burst of small messages is taken from the stream in a few reads, small
	// enough to keep one per stream.
	readBufferSize = 64 << 10

	// initialPayloadAlloc caps the first allocation for a payload. Larger
	// payloads grow as their bytes arrive, so memory follows what the peer
	// has actually sent rather than what its header claims.
	initialPayloadAlloc = 64 << 10

	// payloadGrowth is the factor by which a payload buffer grows once the
	// bytes received have filled it. It bounds the memory committed to a
	// message at about payloadGrowth times what has arrived, while keeping a
	// 1 MiB message to three steps (64 KiB, 256 KiB, 1 MiB) and a 16 MiB one
	// to five; every step but the last is a pooled staging buffer (payload).
	payloadGrowth = 4

	// maxConsecutiveEmptyReads is how many (0, nil) results from the source
	// are tolerated before giving up with io.ErrNoProgress, as bufio does.
	maxConsecutiveEmptyReads = 100
)

// errInvalidRead reports a source that returned a byte count outside
// [0, len(p)], which would otherwise corrupt the buffer indices.
var errInvalidRead = errors.New("framing: source returned an invalid count from Read")

// Reader parses length-prefixed messages from an [io.Reader].
//
// It reads through an internal 64 KiB buffer, allocated on the first read,
// and may therefore consume bytes from the source beyond the message it
// returns. Payloads too large to benefit from the buffer are read directly
// into the message.
//
// A source's deadline does not end the Reader: an error that matches
// [os.ErrDeadlineExceeded] (a read deadline, set perhaps from another goroutine
// to interrupt a blocked read) is returned as it is, and the Reader keeps what
// it read of the message in progress. The next call resumes that message. This
// lets the goroutine that reads a stream change: one is cut off by a deadline,
// another carries on.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src    io.Reader
	max    uint32
	buf    []byte
	r, w   int   // buf[r:w] holds bytes read from src but not yet consumed
	srcErr error // error returned by src, surfaced once buf is drained
	err    error // sticky error returned by ReadMessage

	// A message whose header was consumed and whose payload a deadline cut off.
	inPayload bool
	size      int       // its length
	headerAt  time.Time // when its header was complete (timed reads)

	payload payload // the message being read, kept to avoid an allocation per message
}

// NewReader returns a Reader that parses messages from r, rejecting any
// message longer than maxSize bytes with a [*TooLargeError]. A maxSize of 0
// means [DefaultMaxMessageSize].
func NewReader(r io.Reader, maxSize uint32) *Reader {
	return &Reader{src: r, max: effectiveMax(maxSize)}
}

// Buffered returns the number of bytes read from the source but not yet
// returned as part of a message.
func (r *Reader) Buffered() int {
	return r.w - r.r
}

// ReadMessage returns the next message, in a newly allocated slice that the
// caller owns. An empty message is returned as a non-nil empty slice.
//
// It returns [io.EOF] only when the source ends exactly at a message boundary,
// and [io.ErrUnexpectedEOF] when the source ends inside a length prefix or a
// payload. A message longer than the limit yields a [*TooLargeError] as soon
// as its length has been read, without reading or allocating its payload.
// Errors from the source are returned as they are.
//
// After an error, the Reader is no longer at a known message boundary, and
// every later call returns the same error, unless the error was a deadline
// (see [Reader]).
func (r *Reader) ReadMessage() (msg []byte, err error) {
	msg, _, err = r.readMessage(false)
	return msg, err
}

// ReadMessageTimed is like [Reader.ReadMessage] and also returns the time at
// which the message's 4-byte length was complete in the Reader. The caller
// subtracts it from the time ReadMessageTimed returns to learn how long the
// payload took to arrive; for a message that was already buffered in full,
// that duration is close to zero.
func (r *Reader) ReadMessageTimed() (msg []byte, headerAt time.Time, err error) {
	return r.readMessage(true)
}

// ReadMessageTransfer is like [Reader.ReadMessageTimed] but returns how long the payload
// took to arrive after its length: zero, without reading the clock, when the whole message
// was already buffered, which is the common case for a stream of small messages.
func (r *Reader) ReadMessageTransfer() (msg []byte, transfer time.Duration, err error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	if b := r.Buffered(); !r.inPayload && b >= HeaderSize && b-HeaderSize >= int(binary.BigEndian.Uint32(r.buf[r.r:])) {
		msg, _, err = r.readMessage(false)
		return msg, 0, err
	}
	msg, at, err := r.readMessage(true)
	if err != nil {
		return nil, 0, err
	}
	return msg, time.Since(at), nil
}

// ReadByte returns the stream's next byte, between two messages: a caller whose stream starts
// with a header of its own (peerwire's stream type) reads it through the Reader's buffer, and
// the messages after it. It returns io.EOF when the stream ended there. Like ReadMessage, it
// makes a source error other than a deadline sticky.
func (r *Reader) ReadByte() (byte, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.inPayload {
		return 0, errInMessage
	}
	if err := r.ensure(1); err != nil {
		if isDeadline(err) {
			r.srcErr = nil
		} else {
			r.err = err
		}
		return 0, err
	}
	b := r.buf[r.r]
	r.r++
	return b, nil
}

// errInMessage reports a ReadByte while a message, cut off by a deadline, is still unread.
var errInMessage = errors.New("framing: ReadByte in the middle of a message")

func (r *Reader) readMessage(timed bool) ([]byte, time.Time, error) {
	if r.err != nil {
		return nil, time.Time{}, r.err
	}
	msg, err := r.next(timed)
	if err != nil {
		if isDeadline(err) {
			// Not final: what was read stays, and the next call resumes.
			r.srcErr = nil
		} else {
			r.err = err
		}
		return nil, time.Time{}, err
	}
	return msg, r.headerAt, nil
}

// isDeadline reports a source error that leaves the Reader resumable.
func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (r *Reader) next(timed bool) ([]byte, error) {
	if !r.inPayload {
		if err := r.ensure(HeaderSize); err != nil {
			if err == io.EOF && r.Buffered() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		r.headerAt = time.Time{}
		if timed {
			r.headerAt = time.Now()
		}
		size := binary.BigEndian.Uint32(r.buf[r.r:])
		if size > r.max {
			return nil, &TooLargeError{Size: uint64(size), Max: uint64(r.max)}
		}
		r.r += HeaderSize
		r.size = int(size)
		if r.size <= r.Buffered() {
			// The whole payload is buffered (the common case for small messages).
			msg := make([]byte, r.size)
			r.r += copy(msg, r.buf[r.r:])
			return msg, nil
		}
		// Start with what is already buffered, or with a bounded first guess
		// if the payload continues beyond the buffer. The header's time is
		// kept even for an untimed read, for a timed one that may resume it.
		if !timed {
			r.headerAt = time.Now()
		}
		r.payload.start(r.size, min(r.size, max(r.Buffered(), initialPayloadAlloc)))
		r.inPayload = true
	}
	msg, err := r.readPayload(r.size)
	if err != nil {
		return nil, err
	}
	r.inPayload = false
	return msg, nil
}

// readPayload reads the rest of the n-byte payload started in r.payload and
// returns it, in a slice of length and capacity n. It keeps the payload when
// the source's deadline cuts it off.
func (r *Reader) readPayload(n int) ([]byte, error) {
	p := &r.payload
	for {
		take := min(n-len(p.buf), r.Buffered())
		p.grow(take)
		p.buf = append(p.buf, r.buf[r.r:r.r+take]...)
		r.r += take
		if len(p.buf) == n {
			return p.done(), nil
		}
		if r.srcErr != nil {
			if isDeadline(r.srcErr) {
				return nil, r.srcErr
			}
			p.release()
			return nil, unexpected(r.srcErr)
		}
		if n-len(p.buf) < readBufferSize {
			// The remainder fits in the buffer: fill it, which also picks up
			// whatever follows the message in the same read.
			r.fill()
			continue
		}
		// Large remainder: read straight into the message, growing it as
		// bytes arrive so that memory follows data, not the header's claim.
		p.grow(1)
		k, err := r.read(p.buf[len(p.buf):cap(p.buf)])
		p.buf = p.buf[:len(p.buf)+k]
		if err != nil {
			r.srcErr = err
		}
	}
}

// ensure makes at least n bytes (n <= readBufferSize) available in buf, or
// returns the source's error once buffered bytes cannot satisfy n.
func (r *Reader) ensure(n int) error {
	for r.Buffered() < n {
		if r.srcErr != nil {
			return r.srcErr
		}
		r.fill()
	}
	return nil
}

// fill performs one read from the source into the free end of buf,
// recording any error in srcErr.
func (r *Reader) fill() {
	if r.buf == nil {
		r.buf = make([]byte, readBufferSize)
	}
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	n, err := r.read(r.buf[r.w:])
	r.w += n
	if err != nil {
		r.srcErr = err
	}
}

// read reads once from the source into p (len(p) > 0), retrying reads that
// return neither data nor an error, and validating the count.
func (r *Reader) read(p []byte) (int, error) {
	for range maxConsecutiveEmptyReads {
		n, err := r.src.Read(p)
		if n < 0 || n > len(p) {
			return 0, errInvalidRead
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}

// unexpected converts io.EOF met inside a message into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
