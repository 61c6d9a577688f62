package sendbuf_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/sendbuf"
	"github.com/peerwire/peerwire/internal/session"
)

// recorder is a send stream that records every Write with the deadline it was made under.
// take, when set, decides how much of a write it accepts; a short write fails with a
// *session.TimeoutError, as a stream does whose deadline passed.
type recorder struct {
	mu       sync.Mutex
	deadline time.Time
	writes   []write
	data     bytes.Buffer
	take     func(p []byte) int
	fail     error
	closed   chan struct{}
}

type write struct {
	n        int
	deadline time.Time
}

func newRecorder() *recorder { return &recorder{closed: make(chan struct{})} }

func (r *recorder) StreamID() int64 { return 2 }

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	n := len(p)
	if r.take != nil {
		n = r.take(p)
	}
	r.writes = append(r.writes, write{n: n, deadline: r.deadline})
	r.data.Write(p[:n])
	if n < len(p) {
		return n, &session.TimeoutError{Op: "stream deadline"}
	}
	return n, nil
}

func (r *recorder) Close() error                        { close(r.closed); return nil }
func (r *recorder) CancelWrite(session.StreamErrorCode) {}
func (r *recorder) SetWriteDeadline(t time.Time) error {
	r.mu.Lock()
	r.deadline = t
	r.mu.Unlock()
	return nil
}

func (r *recorder) snapshot() ([]write, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]write(nil), r.writes...), bytes.Clone(r.data.Bytes())
}

// Writes in quick succession go through the buffer: one flusher write per batch, not one
// stream write per message.
func TestWritesAreBatched(t *testing.T) {
	r := newRecorder()
	s := sendbuf.New(context.Background(), r)
	var want bytes.Buffer
	for i := range 200 {
		msg := pattern(64, byte(i))
		want.Write(msg)
		_, err := s.Write(msg)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	<-r.closed
	writes, data := r.snapshot()
	require.Equal(t, want.Bytes(), data)
	require.Less(t, len(writes), 200, "not one stream write per message")
	for _, w := range writes {
		require.True(t, w.deadline.IsZero(), "the flusher writes without a deadline")
	}
}

// TryWrite takes a small write the buffer has room for, as Write does, and leaves to Write a
// large one or one the buffer has no room for; it reports a failed stream's error.
func TestTryWrite(t *testing.T) {
	r := newRecorder()
	block := make(chan struct{})
	s := sendbuf.New(context.Background(), r)
	defer s.CancelWrite(0)

	ok, err := s.TryWrite([]byte("hello"))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.TryWrite(nil)
	require.NoError(t, err)
	require.True(t, ok)
	require.Eventually(t, func() bool { _, data := r.snapshot(); return string(data) == "hello" }, 5*time.Second, time.Millisecond)

	ok, err = s.TryWrite(make([]byte, sendbuf.CopyLimit))
	require.NoError(t, err)
	require.False(t, ok, "a large write is Write's")

	// A stream that takes nothing more (the flusher's writes wait): the buffer fills and
	// TryWrite stops taking.
	r.mu.Lock()
	r.take = func([]byte) int { // called with r.mu held
		if r.deadline.IsZero() {
			<-block
		}
		return 0
	}
	r.mu.Unlock()
	took := 0
	for {
		ok, err = s.TryWrite(make([]byte, 1000))
		require.NoError(t, err)
		if !ok {
			break
		}
		took += 1000
	}
	require.Greater(t, took+1000, sendbuf.Size, "refused only when the buffer has no room")
	// At most the flusher's batch in flight and a full buffer behind it.
	require.LessOrEqual(t, took, 2*sendbuf.Size+1000)
	close(block)
}

// A stream that failed fails the next Write or TryWrite after the flusher met the failure.
func TestTryWriteReportsFailure(t *testing.T) {
	r := newRecorder()
	r.fail = errors.New("broken")
	s := sendbuf.New(context.Background(), r)
	_, err := s.Write([]byte("x")) // buffered: the flusher meets the stream's error
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ok, err := s.TryWrite([]byte("y"))
		return !ok && errors.Is(err, r.fail)
	}, 5*time.Second, time.Millisecond)
	_, err = s.Write([]byte("z"))
	require.ErrorIs(t, err, r.fail)
}
