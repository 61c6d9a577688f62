// Package streampool carries length-framed messages over a session's unidirectional streams.
//
// Per connection, a Pool keeps one (or, by configuration, several) lazily opened send streams
// and accepts every unidirectional stream the peer opens, with one goroutine per inbound
// stream reading its messages (framing.Reader) into one bounded receive queue, from which
// Recv takes them. Opening a stream (which waits for the peer's stream credit) is bounded by
// the stream timeout, 12 s by default, and so is each write: a write fails when the stream
// takes no data for that long.
//
// A send stream whose write failed (timed out, cancelled) is dropped and finished with a FIN
// rather than reset, so messages written before still arrive and the peer discards the
// message the FIN cut short; the next Send opens a fresh stream, whose messages may overtake
// those still in flight on the finished one. A stream the peer reset or stopped is simply
// dropped. Only Close resets the pool's send streams (CodePoolClosed).
//
// Messages sent by one goroutine arrive in the order sent. Concurrent senders' small messages
// queued behind a write in progress are coalesced into the next single stream write, with no
// goroutine or allocation per message.
//
// The receive queue is bounded: when the application does not call Recv, the readers stop
// reading and QUIC/QMux flow control pushes back on the sender.
//
// # Wire format
//
// Every stream the pool opens starts with a stream type, a QUIC variable-length integer:
// StreamMessages (0x00), followed by framed messages (package framing), or StreamControl
// (0x01), followed by exactly one control code and the stream's end. The control codes are
// ControlAccepted (the listener's application accepted the connection; sent by
// nettransport), ControlDrainRequest and ControlDrainDone (Drain, the graceful close). A
// stream of an unknown type or carrying an unknown control code is stopped with
// CodeUnknownStream and ignored; a control stream carrying more than its code is stopped with
// CodeBadControl. docs/wire.md describes the whole format.
package streampool

import (
	"time"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
)

// Defaults applied where a Config field is zero.
const (
	// DefaultTimeout bounds opening a send stream and each write.
	DefaultTimeout = 12 * time.Second
	// DefaultReceiveQueue is how many received messages wait for Recv before readers stop.
	DefaultReceiveQueue = 128
	// DefaultMaxBatch is how many framed bytes of small messages may wait behind a write in
	// progress before further senders wait too.
	DefaultMaxBatch = 1 << 20
)

// writeChunk is the most handed to the stream per write call: the stall timeout applies to
// each chunk, so a large message that keeps moving is never cut off.
const writeChunk = 256 << 10

// Stream error codes the pool sends with STOP_SENDING / RESET_STREAM.
const (
	// CodeWriteFailed resets a send stream that could not be finished with a FIN after a
	// failed write (a stream that can is finished instead, see the package doc), and a
	// control stream whose write failed.
	CodeWriteFailed session.StreamErrorCode = 0x1
	// CodeMessageTooLarge stops a peer's stream whose next message exceeds our maximum size.
	CodeMessageTooLarge session.StreamErrorCode = 0x2
	// CodePoolClosed resets our send streams and stops the peer's streams when our pool
	// closes, and stops a peer's stream that failed other than by its sender's reset.
	CodePoolClosed session.StreamErrorCode = 0x3
	// CodeUnknownStream stops a peer's stream of a type we do not know, or a control stream
	// carrying a code we do not know. The stream is ignored; the connection goes on.
	CodeUnknownStream session.StreamErrorCode = 0x4
	// CodeBadControl stops a peer's control stream that carries more than its one code byte.
	// The stream is ignored; the connection goes on.
	CodeBadControl session.StreamErrorCode = 0x5
)

// Config tunes a Pool. The zero value means the documented defaults; a Config must not be
// modified after use.
type Config struct {
	// Timeout bounds opening a send stream and each write. Writes are timed as stalls: a
	// write fails when the stream takes no data (up to 256 KiB at a time) within Timeout, so
	// a large message that keeps moving is never cut off. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxMessageSize is the largest message sent or accepted. Zero means
	// framing.DefaultMaxMessageSize (16 MiB); at most framing.MaxMessageSizeLimit (4 GiB − 1).
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
		return c.MaxMessageSize
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
