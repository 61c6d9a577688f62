package streampool_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
	"github.com/peerwire/peerwire/internal/streampool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// forEachCore runs fn as a subtest on every session core.
func forEachCore(t *testing.T, fn func(t *testing.T, f sessiontest.CoreFactory)) {
	t.Helper()
	for _, f := range sessiontest.Cores() {
		t.Run(f.Name, func(t *testing.T) { fn(t, f) })
	}
}

// connect returns a connected pair on f; tune, if not nil, adjusts the session configs first.
func connect(t *testing.T, f sessiontest.CoreFactory, tune func(client, server *session.Config)) *sessiontest.Pair {
	t.Helper()
	cc, sc := sessiontest.Configs(t)
	if tune != nil {
		tune(cc, sc)
	}
	return sessiontest.Connect(t, f, cc, sc)
}

// newPool starts a pool on conn and closes it when the test ends (before the connection, as
// cleanups run last-registered first).
func newPool(t testing.TB, conn session.Conn, cfg streampool.Config) *streampool.Pool {
	t.Helper()
	p := streampool.New(conn, cfg)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// testCtx is a context bounding one test's blocking calls.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// payload makes an n-byte message (n >= 8) that carries seq in its first 8 bytes and a
// pattern derived from seq in the rest, so that a truncated, corrupted or mixed-up message is
// caught by checkPayload.
func payload(seq uint64, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = byte(seq*31 + uint64(i)*7)
	}
	return b
}

// checkPayload returns the sequence number of a message made by payload, or an error if the
// message is not intact.
func checkPayload(b []byte, n int) (uint64, error) {
	if len(b) != n {
		return 0, fmt.Errorf("message of %d bytes, want %d", len(b), n)
	}
	seq := binary.BigEndian.Uint64(b)
	for i := 8; i < n; i++ {
		if b[i] != byte(seq*31+uint64(i)*7) {
			return seq, fmt.Errorf("message %d corrupt at byte %d", seq, i)
		}
	}
	return seq, nil
}

// frame returns msg with its length prefix, for writing on a raw stream after msgStream.
func frame(msg []byte) []byte {
	b, err := framing.AppendMessage(nil, msg, framing.MaxMessageSizeLimit)
	if err != nil {
		panic(err)
	}
	return b
}

// msgStream returns the start of a raw message stream: its type, then the frames given.
func msgStream(frames ...[]byte) []byte {
	b := []byte{byte(streampool.StreamMessages)}
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// messageReader reads the stream type at the start of a raw stream a pool opened, checks
// that it is StreamMessages, and returns a reader of the messages after it.
func messageReader(t testing.TB, rs session.ReceiveStream) *framing.Reader {
	t.Helper()
	r := framing.NewReader(rs, 0)
	typ, err := r.ReadByte()
	require.NoError(t, err)
	require.Equal(t, byte(streampool.StreamMessages), typ, "stream type")
	return r
}

// readCountingConn wraps a connection; it counts the bytes read from the streams it accepts,
// so that a test can wait until a reader has taken what was sent.
type readCountingConn struct {
	session.Conn
	mu      sync.Mutex
	n       int
	changed chan struct{} // closed and replaced at each read
}

func newReadCountingConn(c session.Conn) *readCountingConn {
	return &readCountingConn{Conn: c, changed: make(chan struct{})}
}

func (c *readCountingConn) AcceptUniStream(ctx context.Context) (session.ReceiveStream, error) {
	rs, err := c.Conn.AcceptUniStream(ctx)
	if err != nil {
		return nil, err
	}
	return &readCountingStream{ReceiveStream: rs, c: c}, nil
}

// waitRead waits until n bytes in all were read from the accepted streams.
func (c *readCountingConn) waitRead(t testing.TB, ctx context.Context, n int) {
	t.Helper()
	for {
		c.mu.Lock()
		got, ch := c.n, c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%d bytes read, want %d", got, n)
		}
	}
}

type readCountingStream struct {
	session.ReceiveStream
	c *readCountingConn
}

func (s *readCountingStream) Read(p []byte) (int, error) {
	n, err := s.ReceiveStream.Read(p)
	s.c.mu.Lock()
	s.c.n += n
	close(s.c.changed)
	s.c.changed = make(chan struct{})
	s.c.mu.Unlock()
	return n, err
}

// eventually waits for cond, checked every millisecond, for at most 10 s.
func eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, what)
}

// recvSeq receives one message made by payload and returns its sequence number.
func recvSeq(t testing.TB, ctx context.Context, p *streampool.Pool, n int) uint64 {
	t.Helper()
	m, err := p.Recv(ctx)
	require.NoError(t, err)
	seq, err := checkPayload(m.Data, n)
	require.NoError(t, err)
	return seq
}

// countingConn wraps a real connection and counts the Write calls on the send streams it
// opens. With delay set, each Write first sleeps that long, like a write on a slower path.
type countingConn struct {
	session.Conn
	delay  time.Duration
	writes atomic.Int64
}

func (c *countingConn) OpenUniStream(ctx context.Context) (session.SendStream, error) {
	st, err := c.Conn.OpenUniStream(ctx)
	if err != nil {
		return nil, err
	}
	return &countingStream{SendStream: st, c: c}, nil
}

type countingStream struct {
	session.SendStream
	c *countingConn
}

func (s *countingStream) Write(p []byte) (int, error) {
	s.c.writes.Add(1)
	if s.c.delay > 0 {
		time.Sleep(s.c.delay)
	}
	return s.SendStream.Write(p)
}

// TryWrite passes on the stream's own (both cores have it), so that the pool takes the same
// path as over an unwrapped stream; with a delay, the stream is slow and the write waits. A
// TryWrite that takes nothing is not a write.
func (s *countingStream) TryWrite(p []byte) (bool, error) {
	if s.c.delay > 0 {
		return false, nil // a slow stream: the write waits
	}
	ok, err := s.SendStream.(session.TryWriter).TryWrite(p)
	if ok {
		s.c.writes.Add(1)
	}
	return ok, err
}

// gatedConn wraps a real connection; every write on the send streams it opens is held at its
// start, when the sender sets the write's deadline (before it checks its ctx and writes): it
// announces itself on entered, then waits for a value on release, until open is called.
type gatedConn struct {
	session.Conn
	entered, release chan struct{}
	opened           chan struct{}
}

func newGatedConn(c session.Conn) *gatedConn {
	return &gatedConn{Conn: c, entered: make(chan struct{}), release: make(chan struct{}), opened: make(chan struct{})}
}

// open lets every further Write through at once.
func (c *gatedConn) open() { close(c.opened) }

func (c *gatedConn) OpenUniStream(ctx context.Context) (session.SendStream, error) {
	st, err := c.Conn.OpenUniStream(ctx)
	if err != nil {
		return nil, err
	}
	return &gatedStream{SendStream: st, c: c}, nil
}

type gatedStream struct {
	session.SendStream
	c *gatedConn
}

// SetWriteDeadline holds a write's start: a deadline in the future. Clearing the deadline or
// cutting a write (a past deadline) is not held.
func (s *gatedStream) SetWriteDeadline(t time.Time) error {
	if t.After(time.Now()) {
		select {
		case s.c.entered <- struct{}{}:
			select {
			case <-s.c.release:
			case <-s.c.opened:
			}
		case <-s.c.opened:
		}
	}
	return s.SendStream.SetWriteDeadline(t)
}
