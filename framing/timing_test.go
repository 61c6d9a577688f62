package framing

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// bytesAllocated returns how many heap bytes f allocated. Tests that use it
// must not run in parallel with others.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadMessageTimedMeasuresFromCompleteHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		start := time.Now()
		payload := pattern(100)
		go func() {
			hdr := header(uint32(len(payload)))
			_, _ = pw.Write(hdr[:2])
			time.Sleep(time.Second) // the header is not complete yet
			_, _ = pw.Write(hdr[2:])
			time.Sleep(2 * time.Second)
			_, _ = pw.Write(payload[:50])
			time.Sleep(3 * time.Second)
			_, _ = pw.Write(payload[50:])
			_ = pw.Close()
		}()

		r := NewReader(pr, 0)
		msg, headerAt, err := r.ReadMessageTimed()
		end := time.Now()
		require.NoError(t, err)
		require.Equal(t, payload, msg)
		require.Equal(t, time.Second, headerAt.Sub(start))
		require.Equal(t, 5*time.Second, end.Sub(headerAt))

		_, _, err = r.ReadMessageTimed()
		require.Equal(t, io.EOF, err)
	})
}

func TestReadMessageTimedBufferedMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := encode(t, []byte("one"), []byte("two"))
		r := NewReader(bytes.NewReader(stream), 0)
		_, _, err := r.ReadMessageTimed()
		require.NoError(t, err)

		time.Sleep(time.Minute) // the caller was slow; the message waited in the buffer
		msg, headerAt, err := r.ReadMessageTimed()
		require.NoError(t, err)
		require.Equal(t, []byte("two"), msg)
		require.Zero(t, time.Since(headerAt), "a buffered message takes no time to arrive")
	})
}

func TestReadMessageTimedError(t *testing.T) {
	r := NewReader(bytes.NewReader(header(5)), 0)
	msg, headerAt, err := r.ReadMessageTimed()
	require.Equal(t, io.ErrUnexpectedEOF, err)
	require.Nil(t, msg)
	require.True(t, headerAt.IsZero())
}

func TestReadMessageTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		payload := pattern(100)
		go func() {
			hdr := header(uint32(len(payload)))
			_, _ = pw.Write(hdr[:])
			time.Sleep(time.Second) // the header is complete, the payload is not
			_, _ = pw.Write(payload[:50])
			time.Sleep(2 * time.Second)
			// The rest of this payload and a whole second message arrive together.
			_, _ = pw.Write(append(append(payload[50:], header(3)...), "two"...))
			_ = pw.Close()
		}()
		r := NewReader(pr, 0)
		msg, transfer, err := r.ReadMessageTransfer()
		require.NoError(t, err)
		require.Equal(t, payload, msg)
		require.Equal(t, 3*time.Second, transfer)

		time.Sleep(time.Minute) // the caller was slow; the message waited in the buffer
		msg, transfer, err = r.ReadMessageTransfer()
		require.NoError(t, err)
		require.Equal(t, []byte("two"), msg)
		require.Zero(t, transfer, "a buffered message takes no time to arrive")

		_, _, err = r.ReadMessageTransfer()
		require.Equal(t, io.EOF, err)
	})
}

func TestReadMessageTransferErrors(t *testing.T) {
	r := NewReader(bytes.NewReader(header(5)), 0)
	msg, transfer, err := r.ReadMessageTransfer()
	require.Equal(t, io.ErrUnexpectedEOF, err)
	require.Nil(t, msg)
	require.Zero(t, transfer)

	// An oversize length already buffered is refused, and the error sticks.
	r = NewReader(bytes.NewReader(append(header(10), make([]byte, 10)...)), 5)
	_, _, err = r.ReadMessageTransfer()
	require.ErrorIs(t, err, ErrTooLarge)
	_, _, err2 := r.ReadMessageTransfer()
	require.Equal(t, err, err2)
}
