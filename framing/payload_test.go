package framing

import (
	"bytes"
	"runtime/debug"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// distinct returns n bytes that differ from message to message (seed).
func distinct(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// largeStream encodes count messages of 1 MiB, the size of a staging class, so that a
// message wrongly left in a staging buffer would be overwritten by the next one.
func largeStream(t *testing.T, count int) ([]byte, [][]byte) {
	var stream []byte
	var want [][]byte
	for i := range count {
		m := distinct(1<<20, byte(i))
		want = append(want, m)
		var err error
		stream, err = AppendMessage(stream, m, 0)
		require.NoError(t, err)
	}
	return stream, want
}

func TestReaderLargeMessagesOwnTheirMemory(t *testing.T) {
	stream, want := largeStream(t, 4)
	r := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 0)
	var got [][]byte
	for range want {
		m, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, len(m), cap(m))
		got = append(got, m)
	}
	// Checked after every message was read: the staging buffers were reused in between.
	for i := range want {
		require.True(t, bytes.Equal(want[i], got[i]), "message %d changed after later reads", i)
	}
}

// TestStagingAllocatesOnlyTheMessage checks that the buffers a large payload grows through
// are reused: with the collector off (so the pool keeps them), reading 1 MiB messages costs
// about 1 MiB each, where fresh staging buffers would add 320 KiB (64 KiB + 256 KiB).
func TestStagingAllocatesOnlyTheMessage(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const count = 8
	stream, _ := largeStream(t, count+1)
	limit := uint64(count) * (1<<20 + 64<<10)

	r := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 0)
	_, err := r.ReadMessage() // warms the pools
	require.NoError(t, err)
	allocated := bytesAllocated(func() {
		for range count {
			_, err := r.ReadMessage()
			require.NoError(t, err)
		}
	})
	require.Less(t, allocated, limit)
}
