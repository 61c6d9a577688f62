package framing

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// step is one scripted result of the source: its data, then err together with
// the data's last byte (or alone, if there is no data).
type step struct {
	data []byte
	err  error
}

// scriptedSource is an io.Reader that plays back steps in order. A step's data
// may take several reads, as it never hands out more than len(p) bytes; its
// error comes with the last of them. Once the script is over it returns io.EOF.
type scriptedSource struct {
	steps []step
	reads int
}

func (s *scriptedSource) Read(p []byte) (int, error) {
	s.reads++
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	n := copy(p, st.data)
	st.data = st.data[n:]
	if len(st.data) > 0 {
		return n, nil
	}
	err := st.err
	s.steps = s.steps[1:]
	return n, err
}

// script returns a source that plays back parts: a []byte is delivered as
// data (skipped if empty), an error is returned by a read of its own, and a
// step is taken as it is.
func script(parts ...any) *scriptedSource {
	s := &scriptedSource{}
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			if len(p) > 0 {
				s.steps = append(s.steps, step{data: p})
			}
		case error:
			s.steps = append(s.steps, step{err: p})
		case step:
			s.steps = append(s.steps, p)
		default:
			panic(fmt.Sprintf("script: unexpected part %T", p))
		}
	}
	return s
}

// deadlineUnwrapError is a source's own deadline error that unwraps to
// os.ErrDeadlineExceeded, as *net.OpError does.
type deadlineUnwrapError struct{ op string }

func (e deadlineUnwrapError) Error() string { return e.op + ": i/o timeout" }
func (e deadlineUnwrapError) Unwrap() error { return os.ErrDeadlineExceeded }
func (e deadlineUnwrapError) Timeout() bool { return true }

// deadlineIsError matches os.ErrDeadlineExceeded through an Is method only.
type deadlineIsError struct{}

func (deadlineIsError) Error() string        { return "stream deadline reached" }
func (deadlineIsError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// deadlineErrors are the forms in which a source may report its deadline.
var deadlineErrors = []struct {
	name string
	err  error
}{
	{"plain", os.ErrDeadlineExceeded},
	{"wrapped", fmt.Errorf("read tcp 127.0.0.1:4001->127.0.0.1:4002: %w", os.ErrDeadlineExceeded)},
	{"Unwrap", deadlineUnwrapError{op: "read"}},
	{"Is", deadlineIsError{}},
}

// readMethod reads one message through one of the Reader's three methods and
// checks what the method returns besides the message.
type readMethod struct {
	name string
	read func(t *testing.T, r *Reader) ([]byte, error)
}

var readMethods = []readMethod{
	{"ReadMessage", func(t *testing.T, r *Reader) ([]byte, error) {
		msg, err := r.ReadMessage()
		if err != nil {
			require.Nil(t, msg)
		}
		return msg, err
	}},
	{"ReadMessageTimed", func(t *testing.T, r *Reader) ([]byte, error) {
		msg, headerAt, err := r.ReadMessageTimed()
		if err != nil {
			require.Nil(t, msg)
			require.True(t, headerAt.IsZero())
			return nil, err
		}
		since := time.Since(headerAt)
		require.GreaterOrEqual(t, since, time.Duration(0), "headerAt %v is in the future", headerAt)
		require.Less(t, since, 10*time.Second, "headerAt %v is bogus", headerAt)
		return msg, nil
	}},
	{"ReadMessageTransfer", func(t *testing.T, r *Reader) ([]byte, error) {
		msg, transfer, err := r.ReadMessageTransfer()
		if err != nil {
			require.Nil(t, msg)
			require.Zero(t, transfer)
			return nil, err
		}
		require.GreaterOrEqual(t, transfer, time.Duration(0))
		require.Less(t, transfer, 10*time.Second, "bogus transfer duration")
		return msg, nil
	}},
}

// positional returns n bytes in which every 4-byte word holds its own offset,
// tagged with seed in its top byte, so that a byte out of place, or taken from
// another message, shows.
func positional(n int, seed byte) []byte {
	b := make([]byte, n+3)
	for i := 0; i < n; i += 4 {
		binary.BigEndian.PutUint32(b[i:], uint32(i)|uint32(seed)<<24)
	}
	return b[:n:n]
}

// requireRest reads the messages want, in order, each with read, then io.EOF.
func requireRest(t *testing.T, read func() ([]byte, error), want ...[]byte) {
	t.Helper()
	for i, w := range want {
		msg, err := read()
		require.NoError(t, err, "message %d", i)
		requireMessage(t, w, msg, "message %d", i)
	}
	_, err := read()
	require.Equal(t, io.EOF, err)
}

// requireMessage checks that got is want, byte for byte, in a slice of its own
// size (len and cap), without printing megabytes on a mismatch.
func requireMessage(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	require.NotNil(t, got, msgAndArgs...)
	require.Equal(t, len(want), len(got), msgAndArgs...)
	require.Equal(t, len(want), cap(got), msgAndArgs...)
	if !bytes.Equal(want, got) {
		i := 0
		for want[i] == got[i] {
			i++
		}
		require.FailNow(t, fmt.Sprintf("message differs from byte %d of %d: got % x, want % x",
			i, len(want), got[i:min(i+8, len(got))], want[i:min(i+8, len(want))]), msgAndArgs...)
	}
}

// requireDeadline checks that err is the source's deadline error want, returned as it is.
func requireDeadline(t *testing.T, want, err error) {
	t.Helper()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.True(t, err == want, "got %v, want the source's error %v as it is", err, want)
}

// TestReaderDeadlineInHeaderResumes checks that a deadline after 0 to 3 bytes of a length prefix is
// returned as is, the bytes are kept, and the next calls return that message and the rest of the
// stream.
func TestReaderDeadlineInHeaderResumes(t *testing.T) {
	first, second := []byte("first message"), positional(300, 2)
	stream := encode(t, first, second)
	for k := range HeaderSize {
		for _, dl := range deadlineErrors {
			for _, m := range readMethods {
				t.Run(fmt.Sprintf("%d bytes/%s/%s", k, dl.name, m.name), func(t *testing.T) {
					r := NewReader(script(stream[:k], dl.err, stream[k:]), 0)
					msg, err := m.read(t, r)
					requireDeadline(t, dl.err, err)
					require.Nil(t, msg)
					require.Equal(t, k, r.Buffered(), "the header bytes read are kept")

					requireRest(t, func() ([]byte, error) { return m.read(t, r) }, first, second)
				})
			}
		}
	}
}

// TestReaderDeadlineInSmallPayloadResumes checks that a deadline inside a payload that fits in the
// buffer, alone or with the bytes before it, is returned as is and the next call returns the whole
// message, followed by the rest of the stream.
func TestReaderDeadlineInSmallPayloadResumes(t *testing.T) {
	payload := positional(1000, 1)
	hdr := header(uint32(len(payload)))
	rest := encode(t, []byte{}, []byte("next"))
	for _, cut := range []int{0, 1, 500, len(payload) - 1} {
		for _, together := range []bool{false, true} {
			for _, dl := range deadlineErrors {
				for _, m := range readMethods {
					name := fmt.Sprintf("cut %d/together %v/%s/%s", cut, together, dl.name, m.name)
					t.Run(name, func(t *testing.T) {
						before := append(append([]byte{}, hdr...), payload[:cut]...)
						var src *scriptedSource
						if together {
							src = script(step{data: before, err: dl.err}, payload[cut:], rest)
						} else {
							src = script(before, dl.err, payload[cut:], rest)
						}
						r := NewReader(src, 0)
						msg, err := m.read(t, r)
						requireDeadline(t, dl.err, err)
						require.Nil(t, msg)

						requireRest(t, func() ([]byte, error) { return m.read(t, r) }, payload, []byte{}, []byte("next"))
					})
				}
			}
		}
	}
}

// TestReaderDeadlineInLargePayloadResumes checks that a payload larger than the buffer, cut by
// several deadlines (right after the header, around the buffer and staging sizes, at its last
// byte), comes out byte-exact in a slice of its own size whichever method resumes it.
func TestReaderDeadlineInLargePayloadResumes(t *testing.T) {
	const size = 1<<20 + 12345
	payload := positional(size, 3)
	hdr := header(size)
	after := []byte("after the large one")
	for _, tc := range []struct {
		name string
		cuts []int // payload bytes delivered before each deadline
	}{
		{"right after the header", []int{0}},
		{"twice right after the header", []int{0, 0}},
		{"around the buffer size", []int{0, 1, readBufferSize - 1, readBufferSize, readBufferSize + 1}},
		{"around the staging sizes", []int{256<<10 - 1, 256 << 10, 256<<10 + 1, 1 << 20, 1<<20 + 1}},
		{"in the last buffer's worth", []int{size - readBufferSize + 1, size - 100, size - 1}},
		{"every 100003 bytes", []int{100_003, 200_006, 300_009, 400_012, 500_015, 600_018, 700_021, 800_024, 900_027, 1_000_030, 1_050_000}},
	} {
		// Which method makes the first call (the others follow in turn), and
		// whether each deadline comes with the bytes before it.
		for _, v := range []struct {
			first    int
			together bool
		}{{0, false}, {1, true}, {2, false}, {2, true}} {
			first, together := v.first, v.together
			t.Run(fmt.Sprintf("%s/together %v/first %s", tc.name, together, readMethods[first].name), func(t *testing.T) {
				// The payload arrives in chunks of at most 100000 bytes
				// between the deadlines, so each stretch takes several reads.
				src := script(hdr)
				deadlines := make([]error, len(tc.cuts))
				off := 0
				for i, cut := range append(tc.cuts, size) {
					for off < cut {
						n := min(cut-off, 100_000)
						src.steps = append(src.steps, step{data: payload[off : off+n]})
						off += n
					}
					if i == len(tc.cuts) {
						break
					}
					deadlines[i] = fmt.Errorf("deadline %d: %w", i, os.ErrDeadlineExceeded)
					if last := len(src.steps) - 1; together && src.steps[last].err == nil {
						src.steps[last].err = deadlines[i]
					} else {
						src.steps = append(src.steps, step{err: deadlines[i]})
					}
				}
				src.steps = append(src.steps, step{data: encode(t, after)})

				// Each call goes through the next method in turn.
				r := NewReader(src, 0)
				call := first
				read := func() ([]byte, error) {
					m := readMethods[call%len(readMethods)]
					call++
					return m.read(t, r)
				}
				for _, dl := range deadlines {
					msg, err := read()
					requireDeadline(t, dl, err)
					require.Nil(t, msg)
				}
				requireRest(t, read, payload, after)
			})
		}
	}
}

// TestReaderDeadlineResumedTransferCountsFromHeader checks that a message resumed after deadlines
// reports the time from its complete header (not from a deadline in the header, not from the
// resumption, and not from the zero time), whichever method started it.
func TestReaderDeadlineResumedTransferCountsFromHeader(t *testing.T) {
	payload := positional(1000, 4)
	hdr := header(uint32(len(payload)))
	dl := os.ErrDeadlineExceeded

	t.Run("transfer cut in the header and in the payload", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := NewReader(script(hdr[:2], dl, append(append([]byte{}, hdr[2:]...), payload[:300]...), dl,
				payload[300:], encode(t, []byte("next"))), 0)
			_, _, err := r.ReadMessageTransfer()
			requireDeadline(t, dl, err)
			time.Sleep(7 * time.Millisecond) // the header is incomplete: not part of the transfer
			_, _, err = r.ReadMessageTransfer()
			requireDeadline(t, dl, err)
			time.Sleep(20 * time.Millisecond)
			msg, transfer, err := r.ReadMessageTransfer()
			require.NoError(t, err)
			requireMessage(t, payload, msg)
			require.Equal(t, 20*time.Millisecond, transfer)

			msg, transfer, err = r.ReadMessageTransfer()
			require.NoError(t, err)
			require.Equal(t, []byte("next"), msg)
			require.Zero(t, transfer)
		})
	})

	t.Run("untimed cut, transfer resumes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := NewReader(script(hdr, payload[:300], dl, payload[300:]), 0)
			_, err := r.ReadMessage()
			requireDeadline(t, dl, err)
			time.Sleep(20 * time.Millisecond)
			msg, transfer, err := r.ReadMessageTransfer()
			require.NoError(t, err)
			requireMessage(t, payload, msg)
			require.GreaterOrEqual(t, transfer, 20*time.Millisecond)
			require.Less(t, transfer, 10*time.Second)
			require.Equal(t, 20*time.Millisecond, transfer)
		})
	})

	t.Run("untimed cut, timed resumes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			r := NewReader(script(hdr, payload[:300], dl, payload[300:]), 0)
			_, err := r.ReadMessage()
			requireDeadline(t, dl, err)
			time.Sleep(20 * time.Millisecond)
			msg, headerAt, err := r.ReadMessageTimed()
			require.NoError(t, err)
			requireMessage(t, payload, msg)
			require.Equal(t, start, headerAt, "the time the header was complete, in the first call")
		})
	})

	t.Run("large payload, cut twice, mixed methods", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			large := positional(300<<10, 5)
			r := NewReader(script(header(uint32(len(large))), dl, large[:100<<10], dl, large[100<<10:]), 0)
			_, _, err := r.ReadMessageTransfer() // cut right after the header
			requireDeadline(t, dl, err)
			time.Sleep(20 * time.Millisecond)
			_, err = r.ReadMessage() // cut inside the payload
			requireDeadline(t, dl, err)
			time.Sleep(30 * time.Millisecond)
			msg, transfer, err := r.ReadMessageTransfer()
			require.NoError(t, err)
			requireMessage(t, large, msg)
			require.Equal(t, 50*time.Millisecond, transfer)
		})
	})
}

// TestReaderDeadlineResumesThePayloadNotAMessageInsideIt checks that after a deadline mid-payload,
// payload bytes that look like complete messages (00 00 00 01 'x' ...) are not parsed as messages:
// the resumed call returns the original message.
func TestReaderDeadlineResumesThePayloadNotAMessageInsideIt(t *testing.T) {
	inner := encode(t, []byte("x"), []byte("yz")) // 00 00 00 01 'x' 00 00 00 02 'y' 'z'
	payload := append(append(append([]byte{}, inner...), inner...), positional(100, 6)...)
	hdr := header(uint32(len(payload)))
	dl := os.ErrDeadlineExceeded
	for _, cut := range []int{HeaderSize + 1, len(inner), 2 * len(inner)} {
		for _, together := range []bool{false, true} {
			for _, m := range readMethods {
				t.Run(fmt.Sprintf("cut %d/together %v/%s", cut, together, m.name), func(t *testing.T) {
					before := append(append([]byte{}, hdr...), payload[:cut]...)
					var src *scriptedSource
					if together {
						src = script(step{data: before, err: dl}, payload[cut:], encode(t, []byte("after")))
					} else {
						src = script(before, dl, payload[cut:], encode(t, []byte("after")))
					}
					r := NewReader(src, 0)
					msg, err := m.read(t, r)
					requireDeadline(t, dl, err)
					require.Nil(t, msg)

					requireRest(t, func() ([]byte, error) { return m.read(t, r) }, payload, []byte("after"))
				})
			}
		}
	}
}

// TestReaderDeadlineOtherErrorsStaySticky checks that a source error that is not a deadline
// (including timeouts of other kinds and io.EOF inside a message) is returned and then returned
// again by every call, without reading the source, even after earlier deadlines were resumed.
func TestReaderDeadlineOtherErrorsStaySticky(t *testing.T) {
	boom := errors.New("boom")
	small := positional(1000, 7)
	large := positional(300<<10, 8)
	framedSmall := encode(t, small)
	framedLarge := encode(t, large)
	more := encode(t, []byte("more"))
	dl := os.ErrDeadlineExceeded
	for _, tc := range []struct {
		name  string
		parts []any
		want  []error // the errors of successive calls; the last one sticks
	}{
		{"boom in the header", []any{framedSmall[:2], boom, framedSmall[2:], more}, []error{boom}},
		{"boom right after the header", []any{framedSmall[:HeaderSize], boom, framedSmall[HeaderSize:], more}, []error{boom}},
		{"boom mid-payload", []any{framedSmall[:500], boom, framedSmall[500:], more}, []error{boom}},
		{"boom with payload bytes", []any{step{data: framedSmall[:500], err: boom}, framedSmall[500:], more}, []error{boom}},
		{"boom mid large payload", []any{framedLarge[:100<<10], boom, framedLarge[100<<10:], more}, []error{boom}},
		{"iotest timeout mid-payload", []any{framedSmall[:500], iotest.ErrTimeout, framedSmall[500:], more}, []error{iotest.ErrTimeout}},
		{"context deadline mid-payload", []any{framedSmall[:500], context.DeadlineExceeded, framedSmall[500:], more}, []error{context.DeadlineExceeded}},
		{"EOF in the header", []any{framedSmall[:2], io.EOF, framedSmall[2:], more}, []error{io.ErrUnexpectedEOF}},
		{"EOF mid-payload", []any{framedSmall[:500], io.EOF, framedSmall[500:], more}, []error{io.ErrUnexpectedEOF}},
		{"EOF mid large payload", []any{framedLarge[:100<<10], io.EOF, framedLarge[100<<10:], more}, []error{io.ErrUnexpectedEOF}},
		{"boom after a deadline", []any{framedSmall[:300], dl, framedSmall[300:600], boom, framedSmall[600:], more}, []error{dl, boom}},
		{"EOF after a deadline", []any{framedLarge[:2], dl, framedLarge[2 : 200<<10], io.EOF, framedLarge[200<<10:]}, []error{dl, io.ErrUnexpectedEOF}},
		{"oversize header completed after a deadline", []any{header(1 << 30)[:2], dl, header(1 << 30)[2:], more}, []error{dl, ErrTooLarge}},
	} {
		for _, m := range readMethods {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				src := script(tc.parts...)
				r := NewReader(src, 0)
				var err error
				for _, want := range tc.want {
					var msg []byte
					msg, err = m.read(t, r)
					require.ErrorIs(t, err, want)
					require.Nil(t, msg)
				}
				require.NotErrorIs(t, err, os.ErrDeadlineExceeded)
				reads, left := src.reads, len(src.steps)
				require.NotZero(t, left, "the source still has data to deliver")
				for _, again := range readMethods {
					msg, err2 := again.read(t, r)
					require.Equal(t, err, err2, "%s after the error", again.name)
					require.Nil(t, msg)
				}
				require.Equal(t, reads, src.reads, "the source is not read after a sticky error")
				require.Len(t, src.steps, left)
			})
		}
	}
}

// TestReaderDeadlineAtBoundary checks that a deadline between messages is returned as is, and that
// io.EOF after it is a clean io.EOF, not an unexpected one.
func TestReaderDeadlineAtBoundary(t *testing.T) {
	msg1 := []byte("one")
	framed := encode(t, msg1)
	dl := os.ErrDeadlineExceeded
	dl2 := fmt.Errorf("second: %w", os.ErrDeadlineExceeded)
	for _, tc := range []struct {
		name  string
		parts []any
		want  []any // successive results: a message or a deadline error, then io.EOF
	}{
		{"after a message, then EOF", []any{framed, dl}, []any{msg1, dl}},
		{"with the message's last bytes, then EOF", []any{step{data: framed, err: dl}}, []any{msg1, dl}},
		{"before any byte, then EOF", []any{dl}, []any{dl}},
		{"twice before any byte, then a message", []any{dl, dl2, framed}, []any{dl, dl2, msg1}},
		{"after a message, then an explicit EOF", []any{framed, dl, io.EOF, framed}, []any{msg1, dl}},
	} {
		for _, m := range readMethods {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				r := NewReader(script(tc.parts...), 0)
				for _, want := range tc.want {
					msg, err := m.read(t, r)
					if want, ok := want.(error); ok {
						requireDeadline(t, want, err)
						continue
					}
					require.NoError(t, err)
					require.Equal(t, want, msg)
				}
				_, err := m.read(t, r)
				require.Equal(t, io.EOF, err)
				_, err = m.read(t, r)
				require.Equal(t, io.EOF, err, "EOF is sticky")
			})
		}
	}
}

// TestReaderResumesAfterADeadlineAtEveryByte checks that a stream of small messages delivered one
// byte per read, with a deadline after every byte, comes out intact, each deadline reported once.
func TestReaderResumesAfterADeadlineAtEveryByte(t *testing.T) {
	msgs := [][]byte{{}, []byte("x"), positional(300, 9), {}, positional(5000, 10), []byte("end")}
	stream := encode(t, msgs...)
	src := &scriptedSource{}
	for i := range stream {
		src.steps = append(src.steps, step{data: stream[i : i+1]}, step{err: os.ErrDeadlineExceeded})
	}
	r := NewReader(src, 0)
	deadlines := 0
	for i, want := range msgs {
		for {
			msg, err := readMethods[(i+deadlines)%len(readMethods)].read(t, r)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				deadlines++
				require.Less(t, deadlines, len(stream), "more deadlines than were scripted")
				continue
			}
			require.NoError(t, err)
			requireMessage(t, want, msg, "message %d", i)
			break
		}
	}
	_, err := r.ReadMessage() // the deadline after the last byte
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	_, err = r.ReadMessage()
	require.Equal(t, io.EOF, err)
	require.Equal(t, len(stream)-1, deadlines, "every deadline is reported once")
}

// TestReaderResumesAcrossRandomSplitsAndDeadlines checks, over seeded random streams of 50 messages
// of 0 to 200 KiB cut at random points with random deadlines, that retrying after each deadline
// yields every message intact and in order, and every deadline once, in order.
func TestReaderResumesAcrossRandomSplitsAndDeadlines(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			var msgs [][]byte
			var stream []byte
			for i := range 50 {
				var n int
				switch rng.IntN(3) {
				case 0:
					n = rng.IntN(65)
				case 1:
					n = rng.IntN(readBufferSize + 100)
				default:
					n = rng.IntN(200<<10 + 1)
				}
				msgs = append(msgs, positional(n, byte(i)))
				var err error
				stream, err = AppendMessage(stream, msgs[i], 0)
				require.NoError(t, err)
			}

			// Cut the stream at random points; after some cuts the source
			// reports a deadline, with the last bytes before it or alone.
			src := &scriptedSource{}
			var deadlines []error
			addDeadline := func(st step) {
				var dl error
				switch rng.IntN(4) {
				case 0:
					dl = os.ErrDeadlineExceeded
				case 1:
					dl = deadlineIsError{}
				default:
					dl = fmt.Errorf("deadline %d: %w", len(deadlines), os.ErrDeadlineExceeded)
				}
				deadlines = append(deadlines, dl)
				switch {
				case st.data == nil:
					src.steps = append(src.steps, step{err: dl})
				case rng.IntN(2) == 0:
					st.err = dl
					src.steps = append(src.steps, st)
				default:
					src.steps = append(src.steps, st, step{err: dl})
				}
			}
			for off := 0; off < len(stream); {
				var n int
				switch rng.IntN(3) {
				case 0:
					n = 1 + rng.IntN(8)
				case 1:
					n = 1 + rng.IntN(4096)
				default:
					n = 1 + rng.IntN(100_000)
				}
				n = min(n, len(stream)-off)
				st := step{data: stream[off : off+n]}
				off += n
				if rng.IntN(3) == 0 {
					addDeadline(st)
				} else {
					src.steps = append(src.steps, st)
				}
			}
			if rng.IntN(2) == 0 {
				addDeadline(step{}) // one more just before the end
			}

			r := NewReader(src, 0)
			var got [][]byte
			var gotDeadlines []error
			for calls := 0; ; calls++ {
				require.Less(t, calls, len(msgs)+len(deadlines)+1, "more calls than messages and deadlines")
				msg, err := readMethods[rng.IntN(len(readMethods))].read(t, r)
				if err == io.EOF {
					break
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					gotDeadlines = append(gotDeadlines, err)
					continue
				}
				require.NoError(t, err, "after %d messages", len(got))
				got = append(got, msg)
			}
			require.Len(t, got, len(msgs))
			for i := range msgs {
				requireMessage(t, msgs[i], got[i], "message %d", i)
			}
			require.Len(t, gotDeadlines, len(deadlines))
			for i := range deadlines {
				require.True(t, gotDeadlines[i] == deadlines[i], "deadline %d: got %v, want %v", i, gotDeadlines[i], deadlines[i])
			}
		})
	}
}
