package framing

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

const (
	// HeaderSize is the size of the length prefix in front of every message:
	// a uint32, big-endian.
	HeaderSize = 4

	// DefaultMaxMessageSize is the message size limit used when a Reader or
	// Writer is created with a maximum of 0. It bounds the memory a single
	// message can claim from a peer while leaving room for bulk payloads.
	DefaultMaxMessageSize = 16 << 20 // 16 MiB

	// MaxMessageSizeLimit is the largest message the format can carry: the
	// largest value of the 32-bit length prefix.
	MaxMessageSizeLimit = 1<<32 - 1 // 4 GiB − 1

	// DirectWriteSize is the payload size from which a writer hands the caller's slice to
	// the destination as it is instead of copying it into its buffer: beyond it the copy
	// costs more than the extra write. [Writer.WriteMessage] and the stream pool's
	// combiner both use it.
	DirectWriteSize = 64 << 10
)

// ErrTooLarge is matched by every [*TooLargeError], so that callers can test
// for an oversize message with errors.Is without caring about the sizes.
var ErrTooLarge = errors.New("framing: message too large")

// TooLargeError reports a message whose length exceeds the configured
// maximum. The Writer returns it before writing any byte of the message; the
// Reader returns it after reading only the 4-byte length, before allocating
// or reading the payload.
type TooLargeError struct {
	// Size is the length of the message in bytes: the length of the slice
	// given to the Writer, or the length announced by the peer's header.
	Size uint64
	// Max is the limit in force, in bytes.
	Max uint64
}

// Error returns a message such as
// "framing: message of 20971520 bytes exceeds the maximum of 16777216".
func (e *TooLargeError) Error() string {
	return "framing: message of " + strconv.FormatUint(e.Size, 10) +
		" bytes exceeds the maximum of " + strconv.FormatUint(e.Max, 10)
}

// Is reports whether target is [ErrTooLarge].
func (e *TooLargeError) Is(target error) bool {
	return target == ErrTooLarge
}

// effectiveMax maps the "0 means default" convention of the constructors to
// the limit actually enforced. On 32-bit platforms, where a slice cannot hold
// more than math.MaxInt bytes, the limit is capped there.
func effectiveMax(maxSize uint32) uint32 {
	if maxSize == 0 {
		return DefaultMaxMessageSize
	}
	if uint64(maxSize) > math.MaxInt {
		return uint32(min(uint64(math.MaxInt), MaxMessageSizeLimit))
	}
	return maxSize
}

// checkSize returns a *TooLargeError if a message of n bytes is over max.
func checkSize(n int, max uint32) error {
	if uint64(n) > uint64(max) {
		return &TooLargeError{Size: uint64(n), Max: uint64(max)}
	}
	return nil
}

// AppendMessage appends msg, framed (length prefix then payload), to dst and
// returns the extended slice. maxSize is the size limit, 0 meaning
// [DefaultMaxMessageSize]. If msg is longer than the limit, AppendMessage
// returns dst unchanged and a [*TooLargeError].
func AppendMessage(dst, msg []byte, maxSize uint32) ([]byte, error) {
	if err := checkSize(len(msg), effectiveMax(maxSize)); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	return append(dst, msg...), nil
}
