package wire

import (
	"fmt"
	"io"
	"sync"

	"github.com/quic-go/quic-go/quicvarint"
)

// DefaultMaxRecordSize is the initial value of the max_record_size transport
// parameter (draft-ietf-quic-qmux-02 §5.2): a 2-byte Size and 16382 bytes of
// frames fill one 16 KiB TLS record. Advertised values may only be larger.
const DefaultMaxRecordSize = 16382

// MaxSupportedRecordSize is the largest max_record_size a RecordReader can
// enforce: records are held in memory whole, so we never advertise more. It
// is the largest Size a 4-byte varint holds.
const MaxSupportedRecordSize = 1<<30 - 1

// recordReadBufferSize is the initial read buffer of a RecordReader; reads
// this large let one read(2) pull in several records.
const recordReadBufferSize = 64 << 10

// idleReadSize is the small buffer a RecordReader waits in while it holds no data, so that
// an idle connection does not keep a full read buffer.
const idleReadSize = 2 << 10

// readBuffers recycles the read buffers of RecordReaders between bursts.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, recordReadBufferSize); return &b }}

// maxEmptyReads bounds consecutive (0, nil) reads before giving up, as bufio does.
const maxEmptyReads = 100

// AppendRecordHeader appends the Size field of a record whose Frames field is
// size bytes long, in its minimal encoding. It panics if size is 0 (a record
// carries one or more frames) or exceeds the varint range.
func AppendRecordHeader(b []byte, size uint64) []byte {
	if size == 0 {
		panic("qmux: record without frames")
	}
	return quicvarint.Append(b, size)
}

// SizeFieldLen returns the length of the smallest Size field that can hold
// any record the peer accepts, given its max_record_size: pass it to
// BeginRecord. For the default 16382 it is 2.
func SizeFieldLen(maxRecordSize uint64) int {
	return quicvarint.Len(maxRecordSize)
}

// BeginRecord starts a record at the end of b by reserving a Size field of
// sizeLen bytes (1, 2, 4 or 8), to be filled in by EndRecord. It returns the
// extended buffer and the offset at which the record starts; append frames to
// the buffer, then call EndRecord with that offset. RecordRoom tells how many
// frame bytes still fit.
func BeginRecord(b []byte, sizeLen int) (buf []byte, start int) {
	start = len(b)
	// A zero of the chosen length: EndRecord reads the length back from the
	// two high bits of its first byte, so callers need not carry it.
	return quicvarint.AppendWithLen(b, 0, sizeLen), start
}

// RecordRoom returns how many more bytes of frames fit in the record that
// started at start, given the peer's max_record_size and the Size field
// reserved by BeginRecord.
func RecordRoom(b []byte, start int, maxRecordSize uint64) int {
	sizeLen := 1 << (b[start] >> 6)
	limit := min(maxRecordSize, maxForVarintLen(sizeLen), MaxSupportedRecordSize)
	return int(limit) - (len(b) - start - sizeLen)
}

// EndRecord completes the record that BeginRecord started at start by writing
// its Size. A record to which no frame was appended is removed (Size 0 is
// never sent), so the returned buffer may be shorter than b. It panics if the
// frames do not fit the reserved Size field, which RecordRoom prevents.
func EndRecord(b []byte, start int) []byte {
	sizeLen := 1 << (b[start] >> 6)
	size := uint64(len(b) - start - sizeLen)
	if size == 0 {
		return b[:start]
	}
	if size > maxForVarintLen(sizeLen) {
		panic(fmt.Sprintf("qmux: record of %d bytes does not fit a %d-byte Size field", size, sizeLen))
	}
	quicvarint.AppendWithLen(b[start:start], size, sizeLen)
	return b
}

func maxForVarintLen(n int) uint64 {
	return 1<<(8*n-2) - 1
}

// RecordReader reads QMux records from a byte stream.
//
// It reads in large chunks (64 KiB, or more for larger records) into a
// buffer it reuses, so records are returned without copying. When it has
// consumed everything it read, it gives the buffer back to a shared pool and
// waits for the next bytes in a small buffer of its own: an idle connection
// holds 2 KiB rather than 64 KiB. It enforces the
// max_record_size we advertised and rejects records without frames. A
// RecordReader is not safe for concurrent use: one goroutine at a time reads,
// and the transport must always be read by someone (qmux-02 §6: reads must
// not wait on any one stream's consumer).
type RecordReader struct {
	r       io.Reader
	maxSize uint64
	buf     []byte
	pooled  *[]byte // buf came from readBuffers
	small   [idleReadSize]byte
	start   int // first unconsumed byte in buf
	end     int // end of the bytes read into buf
	readErr error
	err     error
}

// NewRecordReader returns a RecordReader reading from r that accepts records
// of up to maxRecordSize bytes of frames: the max_record_size we advertised.
// Zero, or any value below DefaultMaxRecordSize (which a peer may always
// send), means DefaultMaxRecordSize. It panics above MaxSupportedRecordSize.
func NewRecordReader(r io.Reader, maxRecordSize uint64) *RecordReader {
	if maxRecordSize > MaxSupportedRecordSize {
		panic(fmt.Sprintf("qmux: max_record_size %d above supported %d", maxRecordSize, MaxSupportedRecordSize))
	}
	return &RecordReader{
		r:       r,
		maxSize: max(maxRecordSize, DefaultMaxRecordSize),
	}
}

// Next returns the Frames field of the next record. The slice aliases the
// reader's buffer and is valid only until the next call to Next.
//
// At a clean end of stream between records Next returns io.EOF; an end of
// stream inside a record is io.ErrUnexpectedEOF. A record whose Size is 0 is
// a *Error with code PROTOCOL_VIOLATION; a record larger than the advertised
// max_record_size is a *Error with code FRAME_ENCODING_ERROR. Errors from the
// underlying reader are returned as they are. Every error is final: later
// calls return it again.
func (rr *RecordReader) Next() ([]byte, error) {
	return rr.read()
}

func (rr *RecordReader) read() ([]byte, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	emptyReads := 0
	for {
		rec, need, err := rr.parse()
		if err != nil {
			rr.err = err
			return nil, err
		}
		if rec != nil {
			return rec, nil
		}
		if rr.readErr != nil {
			err := rr.readErr
			if err == io.EOF && rr.start != rr.end {
				err = io.ErrUnexpectedEOF
			}
			rr.err = err
			return nil, err
		}
		var n int
		if rr.start == rr.end {
			// Nothing buffered: wait without holding the big buffer.
			rr.release()
			n, err = rr.r.Read(rr.small[:])
			if n > 0 {
				rr.acquire()
				rr.end = copy(rr.buf, rr.small[:n])
			}
		} else {
			rr.makeRoom(need)
			n, err = rr.r.Read(rr.buf[rr.end:])
			rr.end += n
		}
		rr.readErr = err
		if n == 0 && err == nil {
			if emptyReads++; emptyReads >= maxEmptyReads {
				rr.readErr = io.ErrNoProgress
			}
		} else {
			emptyReads = 0
		}
	}
}

// parse returns the next complete record in the buffer, or, if there is none
// yet, how many bytes from rr.start it needs to hold one.
func (rr *RecordReader) parse() (rec []byte, need int, err error) {
	avail := rr.buf[rr.start:rr.end]
	if len(avail) == 0 {
		return nil, 1, nil
	}
	// Non-minimal Size encodings are legal (RFC 9000 §16) and deployed peers
	// send them, so the length comes from the prefix alone.
	hl := 1 << (avail[0] >> 6)
	if len(avail) < hl {
		return nil, hl, nil
	}
	size, _, _ := quicvarint.Parse(avail)
	if size == 0 {
		// The Frames field "contains one or more QUIC frames" (qmux-02 §3.2),
		// and RFC 9000 §12.4, which §3.2 refers to, makes a payload without
		// frames a PROTOCOL_VIOLATION.
		return nil, 0, newError(ProtocolViolation, 0, "record without frames")
	}
	if size > rr.maxSize {
		// qmux-02 §5.2: a Frames field exceeding the declared maximum is a
		// FRAME_ENCODING_ERROR.
		return nil, 0, newError(FrameEncodingError, 0,
			fmt.Sprintf("record of %d bytes exceeds max_record_size %d", size, rr.maxSize))
	}
	total := hl + int(size)
	if len(avail) < total {
		return nil, total, nil
	}
	rr.start += total
	if rr.start == rr.end {
		rr.start, rr.end = 0, 0
	}
	return avail[hl:total:total], 0, nil
}

// release gives the read buffer back; the record returned last is no longer valid.
func (rr *RecordReader) release() {
	if rr.pooled != nil {
		readBuffers.Put(rr.pooled)
		rr.pooled = nil
	}
	rr.buf, rr.start, rr.end = nil, 0, 0
}

// acquire takes a read buffer from the pool.
func (rr *RecordReader) acquire() {
	rr.pooled = readBuffers.Get().(*[]byte)
	rr.buf = *rr.pooled
}

// makeRoom makes sure need bytes from rr.start fit in the buffer and that
// there is space to read into, moving or growing the buffer as needed. The
// record returned by the previous Next may be overwritten.
func (rr *RecordReader) makeRoom(need int) {
	if rr.start+need <= len(rr.buf) && rr.end < len(rr.buf) {
		return
	}
	buf := rr.buf
	if need > len(buf) {
		buf = make([]byte, max(need, 2*len(buf)))
		if rr.pooled != nil {
			defer readBuffers.Put(rr.pooled) // after the copy below
			rr.pooled = nil
		}
	}
	n := copy(buf, rr.buf[rr.start:rr.end])
	rr.buf, rr.start, rr.end = buf, 0, n
}
