package framing

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// feedAll feeds data to a new Decoder in pieces of the given sizes (cycled), collecting every
// message, until an error.
func feedAll(data []byte, maxSize uint32, pieces []int) ([][]byte, *Decoder, error) {
	d := NewDecoder(maxSize)
	var msgs [][]byte
	emit := func(m []byte, _ time.Duration) bool { msgs = append(msgs, m); return true }
	for i := 0; len(data) > 0; i++ {
		k := len(data)
		if len(pieces) > 0 {
			k = min(max(pieces[i%len(pieces)], 1), len(data))
		}
		n, err := d.Feed(data[:k], emit)
		if err != nil {
			return msgs, d, err
		}
		if n != k {
			return msgs, d, errors.New("Feed did not consume everything while emit accepted")
		}
		data = data[k:]
	}
	return msgs, d, nil
}

func TestDecoderMatchesReaderAcrossSplits(t *testing.T) {
	stream := encode(t, []byte("hi"), nil, pattern(300), pattern(70_000), []byte{0}, pattern(5))
	want, err := readAll(bytes.NewReader(stream), 0)
	require.ErrorIs(t, err, io.EOF)
	for _, pieces := range [][]int{nil, {1}, {2}, {3}, {4}, {5, 1}, {7, 4096}, {65536}, {1, 2, 3, 5, 8, 13}} {
		got, d, err := feedAll(stream, 0, pieces)
		require.NoError(t, err, "pieces %v", pieces)
		require.Equal(t, want, got, "pieces %v", pieces)
		require.True(t, d.AtBoundary())
		require.Zero(t, d.Pending())
	}
}

func TestDecoderEmptyMessageIsNonNil(t *testing.T) {
	got, _, err := feedAll(encode(t, nil), 0, nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.NotNil(t, got[0])
	require.Empty(t, got[0])
}

func TestDecoderStopsAtTheMessageEmitRefuses(t *testing.T) {
	first, second := []byte("first"), []byte("second")
	stream := encode(t, first, second, []byte("third"))
	d := NewDecoder(0)
	var got [][]byte
	n, err := d.Feed(stream, func(m []byte, _ time.Duration) bool {
		got = append(got, m)
		return len(got) < 2 // refuse after the second
	})
	require.NoError(t, err)
	require.Equal(t, [][]byte{first, second}, got)
	require.Equal(t, len(encode(t, first, second)), n, "consumed up to the end of the refused message")
	require.True(t, d.AtBoundary())

	// What is left parses on its own, with a Reader as a taker-over would.
	rest, err := readAll(bytes.NewReader(stream[n:]), 0)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, [][]byte{[]byte("third")}, rest)
}

func TestDecoderStopsAfterAMessageCompletedAcrossFeeds(t *testing.T) {
	stream := encode(t, pattern(100), []byte("next"))
	d := NewDecoder(0)
	accept := true
	var got [][]byte
	emit := func(m []byte, _ time.Duration) bool { got = append(got, m); return accept }
	n, err := d.Feed(stream[:50], emit)
	require.NoError(t, err)
	require.Equal(t, 50, n)
	require.False(t, d.AtBoundary())
	require.Equal(t, 50, d.Pending()) // 4 header bytes + 46 payload bytes

	accept = false
	n, err = d.Feed(stream[50:], emit)
	require.NoError(t, err)
	require.Equal(t, 104-50, n)
	require.Equal(t, [][]byte{pattern(100)}, got)
	require.True(t, d.AtBoundary())
}

func TestDecoderTooLarge(t *testing.T) {
	stream := append(encode(t, []byte("ok")), header(301)...)
	stream = append(stream, pattern(301)...)
	d := NewDecoder(300)
	var got [][]byte
	n, err := d.Feed(stream, func(m []byte, _ time.Duration) bool { got = append(got, m); return true })
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, TooLargeError{Size: 301, Max: 300}, *tl)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Equal(t, [][]byte{[]byte("ok")}, got, "messages before the oversize one are delivered")
	require.Equal(t, 6+HeaderSize, n, "only the oversize header is consumed")
	require.False(t, d.AtBoundary())

	_, err2 := d.Feed([]byte{0, 0, 0, 0}, func([]byte, time.Duration) bool { t.Fatal("emit after error"); return true })
	require.Equal(t, err, err2, "the error is sticky")
}

func TestDecoderTooLargeSplitHeader(t *testing.T) {
	d := NewDecoder(10)
	n, err := d.Feed(header(11)[:3], nil)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	_, err = d.Feed(header(11)[3:], nil)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestDecoderMemoryFollowsData(t *testing.T) {
	d := NewDecoder(0)
	_, err := d.Feed(append(header(DefaultMaxMessageSize), 1, 2, 3), nil)
	require.NoError(t, err)
	require.LessOrEqual(t, cap(d.msg.buf), initialPayloadAlloc, "a 16 MiB claim with 3 bytes sent")

	// Growth is bounded by payloadGrowth times what arrived.
	_, err = d.Feed(make([]byte, initialPayloadAlloc), nil)
	require.NoError(t, err)
	require.LessOrEqual(t, cap(d.msg.buf), payloadGrowth*(initialPayloadAlloc+3))
}

func TestDecoderTransfer(t *testing.T) {
	stream := encode(t, pattern(1000))
	d := NewDecoder(0)
	var transfer time.Duration = -1
	emit := func(_ []byte, tr time.Duration) bool { transfer = tr; return true }
	_, err := d.Feed(stream, emit)
	require.NoError(t, err)
	require.Zero(t, transfer, "whole message in one Feed")

	const pause = 5 * time.Millisecond
	_, err = d.Feed(stream[:10], emit)
	require.NoError(t, err)
	time.Sleep(pause)
	_, err = d.Feed(stream[10:], emit)
	require.NoError(t, err)
	require.GreaterOrEqual(t, transfer, pause, "payload arrived at least pause after its header")
}

func FuzzDecoder(f *testing.F) {
	valid := encode(f, []byte("hello"), nil, pattern(300), []byte{0})
	f.Add(valid, uint32(0), uint8(1), uint8(3))
	f.Add(valid, uint32(5), uint8(4), uint8(0))
	f.Add(valid[:len(valid)-1], uint32(300), uint8(2), uint8(9))
	f.Add(append(header(301), pattern(301)...), uint32(300), uint8(0), uint8(1))

	f.Fuzz(func(t *testing.T, data []byte, maxSize uint32, a, b uint8) {
		want, rerr := readAll(bytes.NewReader(data), maxSize)
		got, d, derr := feedAll(data, maxSize, []int{int(a), int(b)})
		require.Equal(t, len(want), len(got), "message count")
		for i := range want {
			require.True(t, bytes.Equal(want[i], got[i]), "message %d", i)
		}
		switch {
		case errors.Is(rerr, ErrTooLarge):
			require.Equal(t, rerr, derr)
		case errors.Is(rerr, io.EOF):
			require.NoError(t, derr)
			require.True(t, d.AtBoundary())
		case errors.Is(rerr, io.ErrUnexpectedEOF):
			require.NoError(t, derr)
			require.False(t, d.AtBoundary())
		default:
			t.Fatalf("reader error %v", rerr)
		}
	})
}

func TestDecoderDetachHandsOverTheIncompleteMessage(t *testing.T) {
	stream := encode(t, []byte("one"), pattern(1000), []byte("three"))
	for _, cut := range []int{2, 7, 9, 300, 1011} { // inside the second header, its payload, the third header
		d := NewDecoder(0)
		var got [][]byte
		_, err := d.Feed(stream[:cut], func(m []byte, _ time.Duration) bool { got = append(got, m); return true })
		require.NoError(t, err)
		partial := d.Detach()
		require.True(t, d.AtBoundary())
		require.Zero(t, d.Pending())

		// A Reader over the detached bytes and the rest of the stream finds the remaining
		// messages.
		rest, err := readAll(io.MultiReader(bytes.NewReader(partial), bytes.NewReader(stream[cut:])), 0)
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, [][]byte{[]byte("one"), pattern(1000), []byte("three")}, append(got, rest...), "cut at %d", cut)
	}
}

// feedOrPlace feeds data to d in pieces of size piece, writing each piece into Room when d
// gives room for all of it (as a transport reading into place does) and feeding it
// otherwise; it returns the messages and how many pieces were placed.
func feedOrPlace(t *testing.T, d *Decoder, data []byte, piece int) (msgs [][]byte, placed int) {
	t.Helper()
	emit := func(m []byte, _ time.Duration) bool { msgs = append(msgs, m); return true }
	for len(data) > 0 {
		k := min(piece, len(data))
		if room := d.Room(k); room != nil {
			require.Len(t, room, k)
			copy(room, data[:k])
			require.True(t, d.Commit(k, emit))
			placed++
		} else {
			n, err := d.Feed(data[:k], emit)
			require.NoError(t, err)
			require.Equal(t, k, n)
		}
		data = data[k:]
	}
	return msgs, placed
}

func TestDecoderRoomAndCommitMatchFeed(t *testing.T) {
	want := [][]byte{[]byte("hi"), pattern(300), pattern(200_000), {}, pattern(70_000), pattern(5)}
	stream := encode(t, want...)
	for _, piece := range []int{1, 7, 1000, 16 << 10, 100_000} {
		d := NewDecoder(0)
		msgs, placed := feedOrPlace(t, d, stream, piece)
		require.Len(t, msgs, len(want), "piece %d", piece)
		for i := range want {
			require.True(t, bytes.Equal(want[i], msgs[i]), "piece %d message %d", piece, i)
			require.Equal(t, len(want[i]), cap(msgs[i]), "piece %d message %d: an exact buffer", piece, i)
		}
		require.True(t, d.AtBoundary())
		if piece < 70_000 {
			require.Positive(t, placed, "piece %d: the middle of a large message has room", piece)
		}
	}
}

func TestDecoderRoomOnlyInsideAPayload(t *testing.T) {
	d := NewDecoder(0)
	require.Nil(t, d.Room(10), "at a header")
	emit := func([]byte, time.Duration) bool { return true }
	stream := encode(t, pattern(100_000))
	_, err := d.Feed(stream[:2], emit)
	require.NoError(t, err)
	require.Nil(t, d.Room(10), "inside a header")
	_, err = d.Feed(stream[2:1000], emit)
	require.NoError(t, err)
	rest := 100_000 + HeaderSize - 1000
	require.Nil(t, d.Room(rest+1), "beyond the payload's end")
	require.Nil(t, d.Room(0))
	room := d.Room(rest)
	require.Len(t, room, rest)
	require.Equal(t, 1000, d.Pending(), "Room changes nothing until Commit")

	// Room not followed by Commit (a source that failed): the next bytes are fed as usual.
	_, err = d.Feed(stream[1000:], func(m []byte, _ time.Duration) bool {
		require.Equal(t, pattern(100_000), m)
		return true
	})
	require.NoError(t, err)
	require.True(t, d.AtBoundary())

	// After an error, no room.
	d = NewDecoder(10)
	_, err = d.Feed(header(11), emit)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Nil(t, d.Room(1))
}

func TestDecoderCommitReportsEmit(t *testing.T) {
	d := NewDecoder(0)
	stream := encode(t, pattern(1000))
	_, err := d.Feed(stream[:100], func([]byte, time.Duration) bool { return true })
	require.NoError(t, err)
	room := d.Room(len(stream) - 100)
	copy(room, stream[100:])
	var got []byte
	require.False(t, d.Commit(len(room), func(m []byte, _ time.Duration) bool { got = m; return false }))
	require.Equal(t, pattern(1000), got)
	require.True(t, d.AtBoundary())
}
