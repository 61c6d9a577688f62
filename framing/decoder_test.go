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
