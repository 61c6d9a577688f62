package streampool_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/streampool"
)

// stallConn is a connection whose send streams take a write only when the test grants them
// the bytes (stallStream.give), as a peer's flow control would: under testing/synctest, the
// stream timeout's 12 s pass at once. Only the methods below are called by a pool that
// receives nothing.
type stallConn struct {
	session.Conn
	ctx     context.Context
	streams chan *stallStream
}

func newStallConn(ctx context.Context) *stallConn {
	return &stallConn{ctx: ctx, streams: make(chan *stallStream, 8)}
}

func (c *stallConn) Context() context.Context { return c.ctx }

func (c *stallConn) OpenUniStream(context.Context) (session.SendStream, error) {
	st := &stallStream{changed: make(chan struct{})}
	c.streams <- st
	return st, nil
}

func (c *stallConn) AcceptUniStream(ctx context.Context) (session.ReceiveStream, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// stallStream takes a write whole once enough bytes were granted, and fails it at its write
// deadline.
type stallStream struct {
	mu       sync.Mutex
	credit   int
	written  int
	deadline time.Time
	fin      bool
	reset    bool
	changed  chan struct{} // closed and replaced at each change
}

func (s *stallStream) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// give lets the stream take n more bytes.
func (s *stallStream) give(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.credit += n
	s.notifyLocked()
}

func (s *stallStream) state() (written int, fin, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written, s.fin, s.reset
}

func (s *stallStream) StreamID() int64 { return 2 }

func (s *stallStream) Write(p []byte) (int, error) {
	for {
		s.mu.Lock()
		switch {
		case s.reset:
			s.mu.Unlock()
			return 0, &session.StreamResetError{StreamID: 2, Code: streampool.CodePoolClosed}
		case s.credit >= len(p):
			s.credit -= len(p)
			s.written += len(p)
			s.mu.Unlock()
			return len(p), nil
		case !s.deadline.IsZero() && !time.Now().Before(s.deadline):
			s.mu.Unlock()
			return 0, &session.TimeoutError{Op: "write"}
		}
		deadline, changed := s.deadline, s.changed
		s.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-changed:
		case <-expired:
		}
	}
}

func (s *stallStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fin = true
	return nil
}

func (s *stallStream) CancelWrite(session.StreamErrorCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset = true
	s.notifyLocked()
}

func (s *stallStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = t
	s.notifyLocked()
	return nil
}

// A write the stream takes nothing of fails after exactly the default stream timeout, and
// the stream is finished (FIN), not reset, so that what was written before still arrives.
func TestStalledWriteTimesOutAfterDefaultTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newStallConn(t.Context())
		pool := streampool.New(c, streampool.Config{})
		defer pool.Close()

		start := time.Now()
		err := pool.Send(context.Background(), []byte("hello"))
		var te *session.TimeoutError
		require.ErrorAs(t, err, &te)
		require.Equal(t, "write", te.Op)
		require.Equal(t, streampool.DefaultTimeout, te.After)
		require.Equal(t, streampool.DefaultTimeout, time.Since(start))
		_, fin, reset := (<-c.streams).state()
		require.True(t, fin, "the stream was finished")
		require.False(t, reset, "the stream was reset")
	})
}

// A large message whose stream keeps taking data, a chunk at a time within the timeout, is
// never cut off, however long it takes in all.
func TestMovingWriteIsNotCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newStallConn(t.Context())
		pool := streampool.New(c, streampool.Config{})
		defer pool.Close()
		const size = 1 << 20 // four chunks of 256 KiB
		sent := make(chan error, 1)
		go func() { sent <- pool.Send(context.Background(), payload(0, size)) }()
		st := <-c.streams
		start := time.Now()
		const step = streampool.DefaultTimeout - time.Second
		for i := range 4 {
			time.Sleep(step)
			n := 256 << 10
			if i == 0 {
				n += 1 + 4 // the stream type and the message's length
			}
			st.give(n)
		}
		require.NoError(t, <-sent)
		require.Equal(t, 4*step, time.Since(start))
		written, _, _ := st.state()
		require.Equal(t, 1+4+size, written)
	})
}

// Close interrupts a Send blocked in a stalled write at once instead of leaving it to the
// write timeout.
func TestCloseInterruptsStalledSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newStallConn(t.Context())
		pool := streampool.New(c, streampool.Config{})
		sent := make(chan error, 1)
		go func() { sent <- pool.Send(context.Background(), payload(0, 8<<20)) }()
		synctest.Wait() // Send is blocked in the write

		start := time.Now()
		require.NoError(t, pool.Close())
		require.ErrorIs(t, <-sent, net.ErrClosed)
		require.Zero(t, time.Since(start))
		_, _, reset := (<-c.streams).state()
		require.True(t, reset, "Close resets the send stream")
	})
}

// A Send whose ctx ends while its write is stalled returns ctx's error at once; the stream is
// finished, not reset, and the next Send opens a fresh one.
func TestCancelledStalledWriteFinishesStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newStallConn(t.Context())
		pool := streampool.New(c, streampool.Config{})
		defer pool.Close()
		ctx, cancel := context.WithCancel(context.Background())
		sent := make(chan error, 1)
		go func() { sent <- pool.Send(ctx, payload(0, 100)) }()
		synctest.Wait()
		start := time.Now()
		cancel()
		require.ErrorIs(t, <-sent, context.Canceled)
		require.Zero(t, time.Since(start))
		_, fin, reset := (<-c.streams).state()
		require.True(t, fin)
		require.False(t, reset)

		go func() { sent <- pool.Send(context.Background(), payload(1, 100)) }()
		next := <-c.streams
		next.give(1 + 4 + 100)
		require.NoError(t, <-sent)
	})
}
