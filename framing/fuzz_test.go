package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// readAll decodes messages from src until the first error.
func readAll(src io.Reader, maxSize uint32) ([][]byte, error) {
	r := NewReader(src, maxSize)
	var msgs [][]byte
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, msg)
	}
}

func FuzzReader(f *testing.F) {
	valid := encode(f, []byte("hello"), nil, pattern(300), []byte{0})
	for _, maxSize := range []uint32{0, 1, 5, 300, MaxMessageSizeLimit} {
		f.Add(valid, maxSize)
		f.Add(valid[:len(valid)-1], maxSize) // payload cut
		f.Add(valid[:2], maxSize)            // header cut
		f.Add(encode(f, nil), maxSize)
		f.Add([]byte{}, maxSize)
	}
	f.Add(append(header(301), pattern(301)...), uint32(300))                         // oversize by one
	f.Add(append(encode(f, []byte("ok")), header(1<<30)...), uint32(0))              // oversize after a valid message
	f.Add(append(header(MaxMessageSizeLimit), 1, 2, 3), uint32(MaxMessageSizeLimit)) // huge but allowed, cut

	f.Fuzz(func(t *testing.T, data []byte, maxSize uint32) {
		limit := effectiveMax(maxSize)
		msgs, err := readAll(bytes.NewReader(data), maxSize)

		// Every message respects the limit and re-encodes to exactly the
		// bytes the reader consumed for it.
		var consumed []byte
		for _, m := range msgs {
			if uint64(len(m)) > uint64(limit) {
				t.Fatalf("message of %d bytes returned under a limit of %d", len(m), limit)
			}
			var aerr error
			consumed, aerr = AppendMessage(consumed, m, maxSize)
			if aerr != nil {
				t.Fatal(aerr)
			}
		}
		if !bytes.HasPrefix(data, consumed) {
			t.Fatal("re-encoded messages are not a prefix of the input")
		}

		// The error describes what follows the last message.
		rest := data[len(consumed):]
		var tl *TooLargeError
		switch {
		case err == io.EOF:
			if len(rest) != 0 {
				t.Fatalf("io.EOF with %d bytes left", len(rest))
			}
		case err == io.ErrUnexpectedEOF:
			if len(rest) == 0 {
				t.Fatal("io.ErrUnexpectedEOF at a clean boundary")
			}
			if len(rest) >= HeaderSize {
				n := binary.BigEndian.Uint32(rest)
				if n > limit || uint64(len(rest)-HeaderSize) >= uint64(n) {
					t.Fatalf("io.ErrUnexpectedEOF for a complete or oversize message of %d bytes", n)
				}
			}
		case errors.As(err, &tl):
			if len(rest) < HeaderSize {
				t.Fatal("TooLargeError without a complete header")
			}
			n := binary.BigEndian.Uint32(rest)
			if tl.Size != uint64(n) || tl.Max != uint64(limit) || n <= limit {
				t.Fatalf("TooLargeError %+v for header %d under limit %d", *tl, n, limit)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}

		// Reading one byte at a time gives the same result.
		if len(data) <= 1<<16 {
			msgs2, err2 := readAll(iotest.OneByteReader(bytes.NewReader(data)), maxSize)
			if len(msgs2) != len(msgs) || err2.Error() != err.Error() {
				t.Fatalf("one-byte reads: %d messages, %v; whole reads: %d messages, %v", len(msgs2), err2, len(msgs), err)
			}
			for i := range msgs {
				if !bytes.Equal(msgs[i], msgs2[i]) {
					t.Fatalf("message %d differs with one-byte reads", i)
				}
			}
		}
	})
}
