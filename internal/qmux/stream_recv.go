package qmux

// stream_recv.go: a stream's receive side and its receive buffer.
//
// The reader goroutine copies a STREAM frame's data out of its record into the stream's
// receive buffer (chunks of up to chunkSize bytes from a pool) and signals rSignal; Read
// copies out of the buffer, waiting for that signal when it is empty. Flow control bounds
// the buffer: the peer may send at most the window beyond what was read.
//
// Invariants:
//   - readOff <= recvOff: what was read (or discarded) never passes what arrived; the bytes
//     in between are in chunks, starting at head in chunks[0].
//   - Credit (conn_flow.go) is returned for every byte read, discarded after CancelRead, or
//     dropped by a reset.
//   - After CancelRead or a reset (recvErr), the buffer is empty and arriving data is
//     discarded.

import (
	"io"
	"sync"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// chunkSize is the capacity of receive chunks: the most STREAM data a record of the default
// max_record_size carries.
const chunkSize = 16 << 10

// chunkPool recycles receive chunks.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// appendData copies data into the receive buffer.
func (s *stream) appendData(data []byte) {
	for len(data) > 0 {
		if k := len(s.chunks); k > 0 {
			last := s.chunks[k-1]
			if room := cap(*last) - len(*last); room > 0 {
				m := min(room, len(data))
				*last = append(*last, data[:m]...)
				data = data[m:]
				continue
			}
		}
		s.chunks = append(s.chunks, chunkPool.Get().(*[]byte))
	}
}

func (s *stream) read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if len(s.chunks) > 0 {
			n := s.copyOutLocked(p)
			s.readOff += uint64(n)
			c.consumedLocked(s, uint64(n))
			// Reading the last byte finishes the receive side (and may free a stream for the
			// peer, MAX_STREAMS) without waiting for a Read that returns io.EOF.
			c.streamMaybeDoneLocked(s)
			return n, nil
		}
		if s.recvErr != nil {
			return 0, s.recvErr
		}
		if s.finKnown && s.readOff == s.finalSize {
			c.streamMaybeDoneLocked(s)
			return 0, io.EOF
		}
		if err := c.closing.err; err != nil {
			return 0, err
		}
		deadline := s.rDeadline
		c.mu.Unlock()
		timedOut := wait(s.rSignal, deadline)
		c.mu.Lock()
		if timedOut && len(s.chunks) == 0 && !s.rDeadline.IsZero() && !time.Now().Before(s.rDeadline) {
			return 0, &session.TimeoutError{Op: "stream read deadline"}
		}
	}
}

// copyOutLocked copies buffered data into p, returning emptied chunks to the pool.
func (s *stream) copyOutLocked(p []byte) int {
	n := 0
	for n < len(p) && len(s.chunks) > 0 {
		b := *s.chunks[0]
		m := copy(p[n:], b[s.head:])
		n += m
		s.head += m
		if s.head == len(b) {
			*s.chunks[0] = b[:0]
			chunkPool.Put(s.chunks[0])
			s.chunks[0] = nil
			s.chunks = s.chunks[1:]
			s.head = 0
		}
	}
	return n
}

func (s *stream) cancelRead(code uint64) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.recvErr != nil || (s.finKnown && s.readOff == s.finalSize) || c.closing.err != nil {
		return
	}
	s.recvErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(code)}
	s.dropChunksLocked()
	if !s.finKnown {
		// Ask the peer to stop; it answers with RESET_STREAM, which settles the final size.
		c.send.ctrl = append(c.send.ctrl, &wire.StopSendingFrame{StreamID: s.id, ErrorCode: code})
		c.signalWriter()
	}
	signal(s.rSignal)
	c.streamMaybeDoneLocked(s)
}

// dropChunksLocked discards buffered data, returning its flow-control credit to the
// connection.
func (s *stream) dropChunksLocked() {
	var n uint64
	for i, ch := range s.chunks {
		b := *ch
		if i == 0 {
			n += uint64(len(b) - s.head)
		} else {
			n += uint64(len(b))
		}
		*ch = b[:0]
		chunkPool.Put(ch)
	}
	s.chunks, s.head = nil, 0
	s.readOff += n
	s.c.consumedConnLocked(n)
}

func (s *stream) setReadDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.rDeadline = t
	s.c.mu.Unlock()
	signal(s.rSignal)
	return nil
}
