package framing

import "sync"

// payload is a message being assembled from bytes as they arrive. Its buffer grows by
// payloadGrowth each time the bytes received fill it, so memory follows what the peer sent,
// not what its header claimed.
//
// Every buffer before the last is a staging buffer: it is never handed to the caller, so it
// comes from a pool and goes back once its bytes are copied into the next one. Only the
// final buffer, of exactly the message's length, is a fresh allocation. A 1 MiB message
// therefore costs one allocation of 1 MiB and the copy of the 320 KiB staged on the way,
// rather than three zeroed allocations (64 KiB, 256 KiB, 1 MiB). Staging buffers are not
// cleared between uses: a source that reads into one is handed bytes of an earlier message
// in the part it is asked to overwrite, as an io.Reader reading into a bufio buffer is.
type payload struct {
	buf   []byte  // len: bytes received; cap: bytes committed
	size  int     // the message's length, from its header
	stage *[]byte // buf's pool entry while buf is a staging buffer
}

// start begins a message of size bytes with room for first bytes (at most size).
func (p *payload) start(size, first int) {
	p.release() // a message abandoned mid-way, if any
	p.size = size
	p.resize(first)
}

// grow makes room for at least need more bytes.
func (p *payload) grow(need int) {
	if cap(p.buf)-len(p.buf) >= need {
		return
	}
	p.resize(min(p.size, max(payloadGrowth*cap(p.buf), len(p.buf)+need)))
}

// resize moves the bytes received into a buffer of capacity c: the final buffer when c is
// the message's length, a staging buffer otherwise.
func (p *payload) resize(c int) {
	var next []byte
	var stage *[]byte
	if c == p.size {
		next = make([]byte, len(p.buf), c)
	} else {
		stage = getStage(c)
		next = (*stage)[:len(p.buf)]
	}
	copy(next, p.buf)
	p.release()
	p.buf, p.stage = next, stage
}

// done returns the complete message and forgets it. The message is the final buffer:
// len(p.buf) == p.size implies cap(p.buf) == p.size, since staging buffers are smaller.
func (p *payload) done() []byte {
	msg := p.buf
	p.buf, p.stage = nil, nil
	return msg
}

// release returns a staging buffer to its pool and forgets the message, for a message
// abandoned on an error.
func (p *payload) release() {
	if p.stage != nil {
		putStage(p.stage)
	}
	p.buf, p.stage = nil, nil
}

// Staging buffers come in the sizes the growth produces from initialPayloadAlloc: 64 KiB,
// 256 KiB, 1 MiB and 4 MiB, enough to stage any message up to the default limit (16 MiB).
// Other sizes (steps toward a message above 16 MiB) are allocated and left to the garbage
// collector.
const stageClasses = 4

var stagePools [stageClasses]sync.Pool

// stageClass returns the pool for buffers of capacity c, or -1.
func stageClass(c int) int {
	s := initialPayloadAlloc
	for i := range stageClasses {
		if c == s {
			return i
		}
		s *= payloadGrowth
	}
	return -1
}

func getStage(c int) *[]byte {
	if i := stageClass(c); i >= 0 {
		if b, ok := stagePools[i].Get().(*[]byte); ok {
			return b
		}
	}
	b := make([]byte, c)
	return &b
}

func putStage(b *[]byte) {
	if i := stageClass(cap(*b)); i >= 0 {
		*b = (*b)[:cap(*b)]
		stagePools[i].Put(b)
	}
}
