// Package streampool carries length-framed messages over a session's unidirectional streams.
//
// Per connection, a Pool keeps one (or, by configuration, several) lazily opened send streams
// and accepts every unidirectional stream the peer opens, reading each concurrently into one
// bounded receive queue. Opening a stream (which waits for the peer's stream credit) and each
// write are bounded by the stream timeout, 12 s by default. After any error on a send stream
// the stream is reset and dropped; the next Send opens a fresh one.
//
// A send stream whose write failed (timed out, cancelled) is finished with a FIN rather than
// reset, so messages written before still arrive and the cut message is discarded by the
// receiver; messages sent afterwards go on a fresh stream and may overtake those still in
// flight on the finished one.
//
// Messages sent by one goroutine arrive in the order sent. Concurrent senders' small messages
// queued behind a write in progress are coalesced into the next single stream write, with no
// goroutine or allocation per message.
//
// The receive queue is bounded: when the application does not call Recv, the readers stop
// reading and QUIC/QMux flow control pushes back on the sender.
//
// Graceful close (Drain) on the wire: after finishing its send streams, the pool opens one
// more stream carrying only the length value 0xFFFFFFFF (the drain request); the peer's pool
// answers, on a stream of its own carrying only 0xFFFFFFFE, once it has read to its end every
// stream that arrived before the request. Messages are therefore at most MaxMessageSize
// (4 GiB − 3). A pool that never sent asks nothing.
package streampool

import (
	"time"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
)

// Defaults applied where a Config field is zero.
const (
	// DefaultTimeout bounds opening a send stream and each write (the original's
	// STREAM_OP_TIMEOUT).
	DefaultTimeout = 12 * time.Second
	// DefaultReceiveQueue is how many received messages wait for Recv before readers stop.
	DefaultReceiveQueue = 128
	// DefaultMaxBatch is how many framed bytes of small messages may wait behind a write in
	// progress before further senders wait too.
	DefaultMaxBatch = 1 << 20
	// coalesceLimit: messages up to this size are copied into the shared batch; larger ones
	// are written from the caller's buffer without copying.
	coalesceLimit = 64 << 10
	// writeChunk is the most handed to the stream per write call; the stall timeout applies
	// to each chunk.
	writeChunk = 256 << 10
)

// Stream error codes the pool sends with STOP_SENDING / RESET_STREAM.
const (
	// CodeWriteFailed resets a send stream after a failed or timed-out write, so the peer
	// discards the partial message.
	CodeWriteFailed session.StreamErrorCode = 0x1
	// CodeMessageTooLarge stops a peer's stream whose next message exceeds our maximum size.
	CodeMessageTooLarge session.StreamErrorCode = 0x2
	// CodePoolClosed stops the peer's streams when our pool closes.
	CodePoolClosed session.StreamErrorCode = 0x3
	// CodeMarkerRead stops a peer's stream that carried a graceful-close marker once the
	// marker is read (nothing follows one).
	CodeMarkerRead session.StreamErrorCode = 0x4
)

// Config tunes a Pool. The zero value means the documented defaults; a Config must not be
// modified after use.
type Config struct {
	// Timeout bounds opening a send stream and each write. Writes are timed as stalls: a
	// write fails when the stream takes no data (up to 256 KiB at a time) within Timeout, so
	// a large message that keeps moving is never cut off. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxMessageSize is the largest message sent or accepted. Zero means
	// framing.DefaultMaxMessageSize (16 MiB); larger values are capped at MaxMessageSize
	// (4 GiB − 3).
	MaxMessageSize uint32
	// SendStreams is how many send streams carry messages. Zero means 1: every message from
	// one connection is ordered behind the previous one. More streams let concurrent senders
	// proceed in parallel and give up ordering between different senders (each sender's own
	// messages stay ordered only with 1).
	SendStreams int
	// ReceiveQueue is how many received messages may wait for Recv. Zero means
	// DefaultReceiveQueue.
	ReceiveQueue int
	// MaxBatch bounds the bytes of small messages coalesced behind a write in progress. Zero
	// means DefaultMaxBatch.
	MaxBatch int
}

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Config) maxMessage() uint32 {
	if c.MaxMessageSize > 0 {
		return min(c.MaxMessageSize, MaxMessageSize)
	}
	return framing.DefaultMaxMessageSize
}

func (c *Config) sendStreams() int {
	if c.SendStreams > 0 {
		return c.SendStreams
	}
	return 1
}

func (c *Config) receiveQueue() int {
	if c.ReceiveQueue > 0 {
		return c.ReceiveQueue
	}
	return DefaultReceiveQueue
}

func (c *Config) maxBatch() int {
	if c.MaxBatch > 0 {
		return c.MaxBatch
	}
	return DefaultMaxBatch
}
