package qmux

// Tests of inline writes: a small Write that finds the writer goroutine idle writes its
// record itself without ever blocking, leaving what a full socket does not take to the
// writer (conn.writeInlineLocked, sock.go). They run over loopback TCP, the transport where
// a write can be attempted without blocking, outside synctest bubbles (real sockets).

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (ours, theirs *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, _ := ln.AcceptTCP()
		accepted <- c
	}()
	ours, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	require.NoError(t, err)
	theirs = <-accepted
	require.NotNil(t, theirs)
	t.Cleanup(func() { _ = ours.Close(); _ = theirs.Close() })
	return ours, theirs
}

// inlinePeer starts a conn (a server) over a sockConn on loopback TCP, with the scripted
// peer on the other end, and exchanges transport parameters.
func inlinePeer(t *testing.T) *peer {
	t.Helper()
	ours, theirs := tcpPair(t)
	p := newPeerOn(t, testConfig(), false, newSockConn(ours), theirs)
	require.NotNil(t, p.c.sock, "a sockConn over TCP can attempt writes without blocking")
	p.handshake(peerParams())
	return p
}

// attemptFunc is a sockConn write attempt.
type attemptFunc = func(p []byte) (int, error)

// setAttempt replaces the socket's write attempt with wrap(the real attempt).
func setAttempt(s *sockConn, wrap func(real attemptFunc) attemptFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempt = wrap(s.attempt)
}

// inlineStats returns how many inline writes the conn made, and how many of them left
// bytes to the writer goroutine.
func inlineStats(c *conn) (writes, handoffs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inlineWrites, c.inlineHandoffs
}

// waitWriterIdle waits until no goroutine holds the writing role and nothing is queued, so
// that the conn's last send is behind it.
func waitWriterIdle(t testing.TB, c *conn) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		c.mu.Lock()
		idle := !c.writing && len(c.sendQ) == 0 && len(c.ctrl) == 0 && !c.pingPending
		c.mu.Unlock()
		if idle {
			return
		}
		require.True(t, time.Now().Before(deadline), "the writer did not become idle")
		time.Sleep(time.Millisecond)
	}
}

// question has the peer open its index-th bidirectional stream with one byte, which the
// application accepts and reads: the conn received after it last sent, so the next small
// Write answers it.
func question(t *testing.T, p *peer, index uint64) session.Stream {
	t.Helper()
	waitWriterIdle(t, p.c)
	p.send(&wire.StreamFrame{StreamID: p.id(index, dirBidi), Data: []byte{'?'}, HasLength: true})
	s := accept(t, p.c)
	readN(t, s, 1)
	return s
}

// expectData waits until the peer received want on stream id, in order.
func expectData(t *testing.T, p *peer, id uint64, want []byte) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, _ := p.streamData(id)
		if len(got) >= len(want) {
			require.Equal(t, want, got)
			return
		}
		require.True(t, time.Now().Before(deadline), "stream %d: %d of %d bytes arrived", id, len(got), len(want))
		time.Sleep(time.Millisecond)
	}
}

func TestInlineWriteTakenWhenWriterIdle(t *testing.T) {
	p := inlinePeer(t)
	s := question(t, p, 0)
	msg := pattern(100, 1)
	n, err := s.Write(msg)
	require.NoError(t, err)
	require.Equal(t, len(msg), n)
	writes, handoffs := inlineStats(p.c)
	require.Equal(t, 1, writes, "the answer went out from the Write's goroutine")
	require.Zero(t, handoffs, "the socket took all of it")
	f := expectFrame[*wire.StreamFrame](p, nil)
	require.Equal(t, uint64(s.StreamID()), f.StreamID)
	require.Equal(t, msg, f.Data)
}

func TestBackToBackWritesGoToTheWriter(t *testing.T) {
	// A sender of a stream of messages keeps the writer goroutine, which packs the messages
	// queued during one transport write into the next.
	p := inlinePeer(t)
	s := question(t, p, 0)
	var want []byte
	for i := range 50 {
		msg := pattern(64, byte(i))
		_, err := s.Write(msg)
		require.NoError(t, err)
		want = append(want, msg...)
	}
	expectData(t, p, uint64(s.StreamID()), want)
	writes, _ := inlineStats(p.c)
	require.Equal(t, 1, writes, "only the first message, which answered a receipt, was written inline")
}

func TestLargeWriteIsNotInline(t *testing.T) {
	p := inlinePeer(t)
	s := question(t, p, 0)
	msg := pattern(copyLimit, 2)
	_, err := s.Write(msg)
	require.NoError(t, err)
	expectData(t, p, uint64(s.StreamID()), msg)
	writes, _ := inlineStats(p.c)
	require.Zero(t, writes)
}

func TestInlineWriteRemainderGoesOutFirst(t *testing.T) {
	// The socket takes 7 bytes of the inline write: the rest of that sealed write goes to
	// the writer goroutine, ahead of the records it writes afterwards.
	p := inlinePeer(t)
	s := question(t, p, 0)
	setAttempt(p.c.sock, func(real attemptFunc) attemptFunc {
		return func(b []byte) (int, error) { return real(b[:min(len(b), 7)]) }
	})
	first := pattern(3000, 3)
	_, err := s.Write(first)
	require.NoError(t, err)
	writes, handoffs := inlineStats(p.c)
	require.Equal(t, 1, writes)
	require.Equal(t, 1, handoffs)
	want := append([]byte{}, first...)
	for i := range 20 {
		msg := pattern(500, byte(i))
		_, err := s.Write(msg)
		require.NoError(t, err)
		want = append(want, msg...)
	}
	expectData(t, p, uint64(s.StreamID()), want)
	_, handoffs = inlineStats(p.c)
	require.Equal(t, 1, handoffs)
}

// rawRecord reads one record from r without reading past it (wire.RecordReader reads
// ahead), for a record with a 2-byte Size, as the conn writes them.
func rawRecord(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var hdr [2]byte
	_, err := io.ReadFull(r, hdr[:])
	require.NoError(t, err)
	require.Equal(t, byte(0x40), hdr[0]&0xc0, "a 2-byte Size")
	payload := make([]byte, binary.BigEndian.Uint16(hdr[:])&0x3fff)
	_, err = io.ReadFull(r, payload)
	require.NoError(t, err)
	return payload
}

func TestInlineWriteNeverBlocksOnFullSocket(t *testing.T) {
	ours, theirs := tcpPair(t)
	require.NoError(t, ours.SetWriteBuffer(16<<10))
	require.NoError(t, theirs.SetReadBuffer(16<<10))
	sock := newSockConn(ours)
	c := newConn(sock, false, testConfig(), session.State{})
	t.Cleanup(func() {
		_ = theirs.Close()
		_ = c.CloseWithError(0, "")
		<-c.ended
	})
	_, err := theirs.Write(paramsRecord(peerParams()))
	require.NoError(t, err)
	var parser wire.Parser
	f, _, err := parser.ParseNext(rawRecord(t, theirs))
	require.NoError(t, err)
	require.IsType(t, &wire.TransportParametersFrame{}, f)
	waitWriterIdle(t, c)

	// Fill the socket, and the peer's receive buffer, with bytes the peer skips later.
	junk := make([]byte, 64<<10)
	var skip int64
	for {
		n, err := sock.attempt(junk)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		skip += int64(n)
	}

	// The peer asks; the answer finds the writer idle and the socket full.
	id := streamID(0, dirBidi, true)
	q := (&wire.StreamFrame{StreamID: id, Data: []byte{'?'}, HasLength: true}).Append(nil)
	_, err = theirs.Write(append(wire.AppendRecordHeader(nil, uint64(len(q))), q...))
	require.NoError(t, err)
	s := accept(t, c)
	readN(t, s, 1)
	answer := pattern(4000, 4)
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(answer)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("a small Write blocked on a full socket")
	}
	writes, handoffs := inlineStats(c)
	require.Equal(t, 1, writes)
	require.Equal(t, 1, handoffs, "the socket was full: the writer goroutine has the record")

	// The peer reads again: after the junk, the answer.
	_, err = io.CopyN(io.Discard, theirs, skip)
	require.NoError(t, err)
	rr := wire.NewRecordReader(theirs, wire.MaxSupportedRecordSize)
	var got []byte
	for len(got) < len(answer) {
		rec, err := rr.Next()
		require.NoError(t, err)
		for len(rec) > 0 {
			f, n, err := parser.ParseNext(rec)
			require.NoError(t, err)
			if sf, ok := f.(*wire.StreamFrame); ok && sf.StreamID == id {
				require.Equal(t, uint64(len(got)), sf.Offset)
				got = append(got, sf.Data...)
			}
			rec = rec[n:]
		}
	}
	require.Equal(t, answer, got)
}

func TestInlineAndWriterRecordsKeepOrder(t *testing.T) {
	// Several senders write on their own streams while the peer keeps sending, so that
	// writes alternate between the inline path and the writer goroutine, and every third
	// inline attempt finds the socket short of room. Each stream's data must arrive whole
	// and in order, in well-formed records (the peer parses every record).
	p := inlinePeer(t)
	var attempts atomic.Int64
	setAttempt(p.c.sock, func(real attemptFunc) attemptFunc {
		return func(b []byte) (int, error) {
			if attempts.Add(1)%3 == 0 {
				b = b[:len(b)/2]
			}
			return real(b)
		}
	})
	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		// The peer's own stream: one byte at a time, each a receipt the next Write answers.
		defer close(pinged)
		id := p.id(0, dirUni)
		for off := uint64(0); ; off++ {
			select {
			case <-stop:
				return
			default:
			}
			b := (&wire.StreamFrame{StreamID: id, Offset: off, Data: []byte{'.'}, HasLength: true}).Append(nil)
			if _, err := p.nc.Write(append(wire.AppendRecordHeader(nil, uint64(len(b))), b...)); err != nil {
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	const senders, messages = 4, 300
	want := make([][]byte, senders)
	ids := make([]uint64, senders)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i := range senders {
		s := open(t, p.c)
		ids[i] = uint64(s.StreamID())
		for j := range messages {
			want[i] = append(want[i], pattern(1+(i*131+j*17)%2000, byte(i+j))...)
		}
		wg.Go(func() {
			off := 0
			for j := range messages {
				n := 1 + (i*131+j*17)%2000
				if _, err := s.Write(want[i][off : off+n]); err != nil {
					errs <- err
					return
				}
				off += n
			}
		})
	}
	wg.Wait()
	close(stop)
	<-pinged
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range senders {
		expectData(t, p, ids[i], want[i])
	}
	writes, handoffs := inlineStats(p.c)
	t.Logf("%d inline writes, %d handed on", writes, handoffs)
	require.NotZero(t, writes, "some writes answered a receipt")
	require.Less(t, writes, senders*messages, "some writes went to the writer goroutine")
}

func TestCloseDuringInlineWrite(t *testing.T) {
	// The connection closes while a Write's goroutine is in its transport write: the
	// writer goroutine waits for the role, then sends CONNECTION_CLOSE after that record.
	p := inlinePeer(t)
	s := question(t, p, 0)
	entered, release := make(chan struct{}), make(chan struct{})
	setAttempt(p.c.sock, func(real attemptFunc) attemptFunc {
		return func(b []byte) (int, error) {
			close(entered)
			<-release
			return real(b)
		}
	})
	msg := pattern(200, 5)
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(msg)
		done <- err
	}()
	<-entered
	require.NoError(t, p.c.CloseWithError(7, "bye"), "Close does not wait for the inline write")
	close(release)
	require.NoError(t, <-done, "the data was taken before the close")
	f := expectFrame[*wire.StreamFrame](p, nil)
	require.Equal(t, msg, f.Data)
	cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
	require.True(t, cc.IsApplication)
	require.Equal(t, uint64(7), cc.ErrorCode)
	p.expectEOF()
	_, err := s.Write([]byte("after"))
	var ce *session.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, session.ClosedByApplication, ce.Kind)
}

func TestTransportErrorDuringInlineWrite(t *testing.T) {
	// The socket fails the inline write: the connection ends as when the writer's write
	// fails, and the Write that had buffered its data still succeeded.
	p := inlinePeer(t)
	s := question(t, p, 0)
	reset := &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	setAttempt(p.c.sock, func(attemptFunc) attemptFunc {
		return func([]byte) (int, error) { return 0, reset }
	})
	n, err := s.Write([]byte("lost"))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	ce := p.closeErr()
	require.Equal(t, session.ClosedByNetwork, ce.Kind)
	require.ErrorIs(t, ce, syscall.ECONNRESET)
	require.ErrorIs(t, ce, net.ErrClosed)
	p.waitEOF()
	_, err = s.Write([]byte("after"))
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestInlineWritesOverTLS(t *testing.T) {
	// A request/response exchange over the Core (TLS over TCP): every answer, on both
	// sides, goes out from the Write's goroutine; with DialEarly the listener's socket is
	// under halfRTTConn.
	for _, early := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "DialEarly"}[early], func(t *testing.T) {
			cc, sc := tlsConfigs(t)
			cc.MaxIncomingStreams, sc.MaxIncomingStreams = 4, 4
			cc.DialEarly, sc.DialEarly = early, early
			client, server := connect(t, cc, sc)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			cs, err := client.OpenStream(ctx)
			require.NoError(t, err)
			const rounds = 200
			echoed := make(chan error, 1)
			go func() {
				ss, err := server.AcceptStream(ctx)
				if err == nil {
					buf := make([]byte, 64)
					for range rounds {
						if _, err = io.ReadFull(ss, buf); err != nil {
							break
						}
						if _, err = ss.Write(buf); err != nil {
							break
						}
					}
				}
				echoed <- err
			}()
			buf := make([]byte, 64)
			for i := range rounds {
				msg := pattern(64, byte(i))
				_, err := cs.Write(msg)
				require.NoError(t, err)
				_, err = io.ReadFull(cs, buf)
				require.NoError(t, err)
				require.True(t, bytes.Equal(msg, buf), "round %d", i)
			}
			require.NoError(t, <-echoed)
			for name, c := range map[string]session.Conn{"client": client, "server": server} {
				writes, handoffs := inlineStats(c.(*conn))
				t.Logf("%s: %d inline writes, %d handed on", name, writes, handoffs)
				// Not every one: the client's first request may follow its parameters rather
				// than a receipt, and an answer may come while the writer goroutine is still
				// finishing the burst that sent the question (under load).
				require.Greater(t, writes, rounds/2, name)
			}
		})
	}
}

func TestSockOf(t *testing.T) {
	ours, _ := tcpPair(t)
	sock := newSockConn(ours)
	require.Same(t, sock, sockOf(sock))
	require.Same(t, sock, sockOf(tls.Client(sock, &tls.Config{})))
	require.Same(t, sock, sockOf(tls.Client(&halfRTTConn{Conn: sock}, &tls.Config{})))
	require.Nil(t, sockOf(ours), "no sockConn")
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	require.Nil(t, sockOf(newSockConn(a)), "a pipe cannot attempt a write without blocking")
}

func TestSockBacklogGoesFirst(t *testing.T) {
	ours, theirs := tcpPair(t)
	sock := newSockConn(ours)
	full := func(attemptFunc) attemptFunc { return func([]byte) (int, error) { return 0, nil } }
	setAttempt(sock, full)

	sock.beginTry()
	n, err := sock.Write([]byte("abc"))
	require.NoError(t, err)
	require.Equal(t, 3, n, "a try write reports everything taken")
	require.True(t, sock.endTry(), "the socket was full: a backlog")
	require.True(t, sock.hasBacklog())
	_, err = sock.Write([]byte("def")) // blocking: the backlog first
	require.NoError(t, err)
	require.False(t, sock.hasBacklog())

	sock.beginTry()
	_, err = sock.Write([]byte("ghi"))
	require.NoError(t, err)
	require.True(t, sock.endTry())
	require.NoError(t, sock.flush())

	sock.beginTry()
	_, err = sock.Write([]byte("jkl"))
	require.NoError(t, err)
	require.True(t, sock.endTry())
	require.NoError(t, sock.CloseWrite(), "the backlog goes before the FIN")

	_ = theirs.SetReadDeadline(time.Now().Add(waitTimeout))
	got, err := io.ReadAll(theirs)
	require.NoError(t, err)
	require.Equal(t, "abcdefghijkl", string(got))
}

func TestSockAttemptReportsSocketErrors(t *testing.T) {
	ours, theirs := tcpPair(t)
	require.NoError(t, theirs.SetLinger(0))
	require.NoError(t, theirs.Close()) // RST
	sock := newSockConn(ours)
	deadline := time.Now().Add(waitTimeout)
	for {
		// The first writes may go out before the reset arrives.
		_, err := sock.attempt([]byte("x"))
		if err != nil {
			var oe *net.OpError
			require.True(t, errors.As(err, &oe), "%v", err)
			require.Equal(t, "write", oe.Op)
			require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "%v", err)
			return
		}
		require.True(t, time.Now().Before(deadline))
		time.Sleep(time.Millisecond)
	}
}

func TestInlineWriteDoesNotAllocate(t *testing.T) {
	// A steady-state request and answer over the Core, both written inline: the Writes
	// allocate nothing, tls.Conn.Write and the socket included, but for the refill of
	// sync.Pools (ours, crypto/tls's record buffers) that the profile's garbage collections
	// empty. Counted on the Writes' call stacks: crypto/tls's reader allocates on its own
	// (an io.Reader per record read), as it does under a plain tls.Conn.
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	cc, sc := tlsConfigs(t)
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = 4, 4
	client, server := connect(t, cc, sc)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cs, err := client.OpenStream(ctx)
	require.NoError(t, err)
	echoed := make(chan error, 1)
	go func() {
		ss, err := server.AcceptStream(ctx)
		if err == nil {
			_, err = io.Copy(ss, ss) // writes what it reads: inline answers
		}
		echoed <- err
	}()
	msg, buf := pattern(64, 1), make([]byte, 64)
	round := func() {
		_, err := cs.Write(msg)
		require.NoError(t, err)
		_, err = io.ReadFull(cs, buf)
		require.NoError(t, err)
	}
	for range 100 {
		round()
	}
	const runs = 1000
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	before := writeAllocs()
	inlineBefore, _ := inlineStats(client.(*conn))
	for range runs {
		round()
	}
	allocs := writeAllocs() - before
	inlineAfter, _ := inlineStats(client.(*conn))
	require.Greater(t, inlineAfter-inlineBefore, runs*9/10, "the requests were written inline")
	t.Logf("%d allocations on the Writes' call stacks in %d round trips", allocs, runs)
	require.Less(t, float64(allocs)/(2*runs), 0.05, "allocations per Write")
	require.NoError(t, cs.Close())
	require.NoError(t, <-echoed)
}

// writeAllocs counts the allocations the memory profile recorded on stacks through
// (*stream).write.
func writeAllocs() int64 {
	// The profile lags up to two garbage collections behind.
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	recs := make([]runtime.MemProfileRecord, n+256)
	n, ok := runtime.MemProfile(recs, true)
	if !ok {
		panic("the memory profile grew")
	}
	var total int64
	for _, r := range recs[:n] {
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			if f.Function == "github.com/peerwire/peerwire/internal/qmux.(*stream).write" {
				total += r.AllocObjects

				break
			}
			if !more {
				break
			}
		}
	}
	return total
}
