package framing

import (
	"encoding/binary"
	"time"
)

// Decoder parses length-prefixed messages from bytes pushed to it, for a receiver that is
// handed data as it arrives (a callback on the goroutine that received it) rather than
// reading it from an [io.Reader]. It enforces the same limit as a [Reader] and, like it,
// sizes a payload buffer by the bytes that arrived, not by the header's claim.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	max uint32

	hdr  [HeaderSize]byte
	nhdr int // bytes of hdr received

	msg      payload   // the payload being assembled
	inMsg    bool      // a header was complete and its payload is not
	headerAt time.Time // when the header of an incomplete payload was complete
	err      error     // sticky
}

// NewDecoder returns a Decoder that rejects messages longer than maxSize bytes with a
// [*TooLargeError]; 0 means [DefaultMaxMessageSize].
func NewDecoder(maxSize uint32) *Decoder {
	return &Decoder{max: effectiveMax(maxSize)}
}

// Feed parses data and calls emit with each message completed by it, in order: msg is a new
// slice the receiver owns; transfer is how long the payload took to arrive after its length
// (zero, without a clock read, when both came in the same Feed).
//
// If emit returns false, Feed stops right after that message and returns the bytes consumed
// up to its end: the Decoder is then at a message boundary, so the rest of the stream can be
// parsed by whatever takes over (a [Reader] over the remaining bytes). Otherwise it consumes
// all of data.
//
// A header announcing more than the limit makes Feed return a [*TooLargeError], after
// consuming the header; the error is sticky.
func (d *Decoder) Feed(data []byte, emit func(msg []byte, transfer time.Duration) bool) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := 0
	for n < len(data) {
		if !d.inMsg {
			// Header: fast path when all four bytes are here and none are held.
			var size uint32
			if d.nhdr == 0 && len(data)-n >= HeaderSize {
				size = binary.BigEndian.Uint32(data[n:])
				n += HeaderSize
			} else {
				k := copy(d.hdr[d.nhdr:], data[n:])
				d.nhdr += k
				n += k
				if d.nhdr < HeaderSize {
					return n, nil
				}
				d.nhdr = 0
				size = binary.BigEndian.Uint32(d.hdr[:])
			}
			if size > d.max {
				d.err = &TooLargeError{Size: uint64(size), Max: uint64(d.max)}
				return n, d.err
			}
			if rest := len(data) - n; rest >= int(size) {
				// The whole payload is here: one exact allocation.
				msg := make([]byte, size)
				n += copy(msg, data[n:])
				if !emit(msg, 0) {
					return n, nil
				}
				continue
			}
			d.inMsg = true
			d.headerAt = time.Now()
			d.msg.start(int(size), min(int(size), max(len(data)-n, initialPayloadAlloc)))
		}
		p := &d.msg
		take := min(p.size-len(p.buf), len(data)-n)
		p.grow(take)
		p.buf = append(p.buf, data[n:n+take]...)
		n += take
		if len(p.buf) < p.size {
			return n, nil
		}
		msg, transfer := p.done(), time.Since(d.headerAt)
		d.inMsg = false
		if !emit(msg, transfer) {
			return n, nil
		}
	}
	return n, nil
}

// Room returns where the next n bytes to be fed go when they all continue the payload being
// assembled and do not go beyond its end, or nil (at a header, or a payload's last bytes
// followed by more). A source that can read them straight into place (a transport
// decrypting a record) writes them there and calls [Decoder.Commit]; nothing changes until
// it does, so a source that fails meanwhile just does not commit.
func (d *Decoder) Room(n int) []byte {
	p := &d.msg
	if d.err != nil || !d.inMsg || n <= 0 || p.size-len(p.buf) < n {
		return nil
	}
	p.grow(n)
	return p.buf[len(p.buf) : len(p.buf)+n]
}

// Commit takes the n bytes written to the slice returned by Room(n) as [Decoder.Feed] would
// have taken them: when they complete the message, it calls emit with it (and its return
// value only says, as for Feed, whether the caller goes on).
func (d *Decoder) Commit(n int, emit func(msg []byte, transfer time.Duration) bool) bool {
	p := &d.msg
	p.buf = p.buf[:len(p.buf)+n]
	if len(p.buf) < p.size {
		return true
	}
	msg, transfer := p.done(), time.Since(d.headerAt)
	d.inMsg = false
	return emit(msg, transfer)
}

// AtBoundary reports whether the bytes fed so far end exactly at a message boundary: when
// the stream ends there, it ended cleanly.
func (d *Decoder) AtBoundary() bool {
	return d.err == nil && !d.inMsg && d.nhdr == 0
}

// Pending returns how many bytes of an incomplete message the Decoder has taken, its
// length prefix included.
func (d *Decoder) Pending() int {
	if d.inMsg {
		return HeaderSize + len(d.msg.buf)
	}
	return d.nhdr
}

// Detach returns the bytes of an incomplete message the Decoder has taken, its length
// prefix included, and resets the Decoder to a message boundary: a [Reader] that takes over
// the stream parses them first, then what follows in the stream.
func (d *Decoder) Detach() []byte {
	var b []byte
	switch {
	case d.inMsg:
		b = binary.BigEndian.AppendUint32(make([]byte, 0, HeaderSize+len(d.msg.buf)), uint32(d.msg.size))
		b = append(b, d.msg.buf...)
	case d.nhdr > 0:
		b = append(b, d.hdr[:d.nhdr]...)
	}
	d.msg.release()
	d.inMsg, d.nhdr = false, 0
	return b
}
