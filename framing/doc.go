// Package framing delimits messages on a byte stream: every message is sent
// as its length, a 32-bit unsigned big-endian integer, followed by exactly
// that many payload bytes.
//
// A stream carrying the three messages "hi", "" and "abc" looks like this:
//
//	00 00 00 02  68 69        length 2, "hi"
//	00 00 00 00               length 0, the empty message
//	00 00 00 03  61 62 63     length 3, "abc"
//
// There is no other header, no checksum and no padding: the transports
// underneath (QUIC streams, QMux streams over TLS) already deliver bytes
// reliably, in order and authenticated, so the frame only has to say where one
// message ends and the next begins.
//
// # Usage
//
// A [Writer] frames messages onto an [io.Writer]. [Writer.Queue] adds a
// message to the Writer's buffer and [Writer.Flush] hands everything queued to
// the destination in a single Write, so small messages sent back to back cost
// one stream write instead of one each. [Writer.WriteMessage] is Queue
// followed by Flush, except that a large payload is written as it is rather
// than copied into the buffer.
//
// A [Reader] parses messages from an [io.Reader]. It reads through its own
// 64 KiB buffer, so that a burst of small messages is taken from the stream in
// a few large reads, and returns each message in a freshly allocated slice
// that the caller owns.
//
// [Reader.ReadByte] reads a single byte between messages, for a stream that
// starts with a header of its own (peerwire's stream type) in front of them.
//
// [AppendMessage] frames a single message into a byte slice, for callers that
// manage their own buffers.
//
// # Limits
//
// Both sides enforce a maximum message size: [DefaultMaxMessageSize] (16 MiB)
// unless configured otherwise, and at most [MaxMessageSizeLimit] (4 GiB − 1,
// the largest length a 32-bit prefix can express; on 32-bit platforms, at
// most math.MaxInt32, the largest slice). A message over the limit is
// reported as a [*TooLargeError], which matches [ErrTooLarge] with
// [errors.Is]. The Writer refuses such a message before writing anything;
// the Reader rejects it as soon as the 4-byte length has arrived, before
// reading or allocating any of the payload.
//
// A length prefix is a promise made by the peer, not data it has sent, so the
// Reader does not allocate a whole message on the strength of its header:
// the payload buffer starts at 64 KiB at most and grows fourfold each time
// the bytes that actually arrived fill it. A peer that announces many large
// messages and sends nothing more therefore costs little memory. The buffers a
// payload grows through are staging buffers, shared through a pool and never
// returned to the caller; only the last, of exactly the message's length, is
// allocated for it, so a large message costs one allocation, not one per step.
//
// # Errors
//
// [Reader.ReadMessage] returns [io.EOF] only when the stream ends cleanly
// between two messages, and [io.ErrUnexpectedEOF] when it ends inside a
// length or a payload. Once a Reader or Writer has returned an error, the
// position in the stream is no longer known to be at a message boundary, so
// the error is sticky: every later call returns it again. A Writer can be
// reused with [Writer.Reset]; a Reader is replaced. The exception is a read
// deadline: a source error matching [os.ErrDeadlineExceeded] is returned as
// is, the Reader keeps the part of the message it read, and the next call
// resumes it, so that a deadline can interrupt a blocked read without losing
// the stream's framing.
//
// Readers and Writers are not safe for concurrent use.
package framing
