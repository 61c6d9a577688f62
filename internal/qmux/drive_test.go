package qmux

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/stretchr/testify/require"
)

// whoReads reports who holds the reading (readerNone, readerLoop or readerCaller).
func whoReads(c *conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reader
}

// pushedAtLeast returns a DriveRead done func: r holds at least n bytes.
func pushedAtLeast(r *recorder, n int) func() bool {
	return func() bool {
		got, _, _, _ := r.snapshot()
		return len(got) >= n
	}
}

// handOver sets up a pushing unidirectional stream (id, recorder) with data "a" and makes
// the reader goroutine hand the reading over: a DriveRead finds it reading and asks for the
// reading, which it gets after the next record ("b").
func handOver(t *testing.T, p *peer) (uint64, *recorder) {
	t.Helper()
	id := p.id(0, dirUni)
	p.sendStream(id, 0, []byte("a"), false)
	r := newRecorder()
	pushUni(t, p.c, r)
	synctest.Wait()
	require.Equal(t, readerLoop, whoReads(p.c))
	require.False(t, p.c.DriveRead(t.Context(), func() bool { return false }),
		"the reader goroutine is reading: a caller cannot")
	p.sendStream(id, 1, []byte("b"), false)
	synctest.Wait()
	require.Equal(t, readerNone, whoReads(p.c), "the reader goroutine hands over after its next record")
	return id, r
}

// drive runs DriveRead on a goroutine of its own, as a stream pool's Recv does.
func drive(ctx context.Context, c *conn, done func() bool) <-chan bool {
	res := make(chan bool, 1)
	go func() { res <- c.DriveRead(ctx, done) }()
	return res
}

func TestDriveReadReadsOnTheCallersGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id, r := handOver(t, p)

		res := drive(t.Context(), p.c, pushedAtLeast(r, 4))
		synctest.Wait()
		require.Equal(t, readerCaller, whoReads(p.c))
		p.sendStream(id, 2, []byte("c"), false)
		synctest.Wait()
		require.Equal(t, readerCaller, whoReads(p.c), "done is not yet true: the caller reads on")
		p.sendStream(id, 3, []byte("d"), false)
		require.True(t, <-res)
		require.Equal(t, int64(2), p.c.drivenRecords.Load(), "both records were read by the caller")
		got, _, _, _ := r.snapshot()
		require.Equal(t, "abcd", string(got))

		// Nobody reads now; within readGrace the reader goroutine takes the reading back.
		start := time.Now()
		p.sendStream(id, 4, []byte("e"), false)
		synctest.Wait()
		require.GreaterOrEqual(t, time.Since(start), readGrace)
		got, _, _, _ = r.snapshot()
		require.Equal(t, "abcde", string(got))
		require.Equal(t, readerLoop, whoReads(p.c))
		require.Equal(t, int64(2), p.c.drivenRecords.Load())
	})
}

// The reader goroutine takes the reading back at least readGrace after the last DriveRead
// call stopped, and less than twice readGrace after it, however many calls came before: a
// call made while the grace timer is pending postpones the take-over without resetting
// the timer.
func TestDriveReadGraceCountsFromTheLastCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id, r := handOver(t, p)

		off := uint64(2)
		driveOne := func() {
			t.Helper()
			res := drive(t.Context(), p.c, pushedAtLeast(r, int(off)+1))
			synctest.Wait()
			p.sendStream(id, off, []byte("x"), false)
			off++
			require.True(t, <-res)
			require.Equal(t, readerNone, whoReads(p.c))
		}
		// A call every 0.8 readGrace, for about ten graces: the reader goroutine never takes over.
		for range 12 {
			driveOne()
			time.Sleep(readGrace * 8 / 10)
			require.Equal(t, readerNone, whoReads(p.c), "a caller read within readGrace")
		}
		require.Equal(t, int64(12), p.c.drivenRecords.Load(), "every record was read by a caller")

		driveOne()
		last := time.Now()
		p.sendStream(id, off, []byte("y"), false) // read by the reader goroutine once it takes over
		for whoReads(p.c) == readerNone {
			time.Sleep(readGrace / 50)
		}
		took := time.Since(last)
		require.GreaterOrEqual(t, took, readGrace)
		require.Less(t, took, 2*readGrace+readGrace/50)
		synctest.Wait()
		got, _, _, _ := r.snapshot()
		require.Equal(t, "ab"+strings.Repeat("x", 13)+"y", string(got))
		require.Equal(t, int64(13), p.c.drivenRecords.Load())
	})
}

// A caller cut off in the middle of a record leaves what it read buffered: the next reader
// completes the record, and no read deadline is left behind to fail it.
func TestDriveReadCutMidRecordResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id, r := handOver(t, p)

		ctx, cancel := context.WithCancel(t.Context())
		res := drive(ctx, p.c, pushedAtLeast(r, 1000))
		synctest.Wait()
		data := pattern(600, 3)
		rec := appendFrames(nil, &wire.StreamFrame{StreamID: id, Offset: 2, Data: data, HasLength: true})
		rec = append(wire.AppendRecordHeader(nil, uint64(len(rec))), rec...)
		p.write(rec[:300])
		synctest.Wait()
		require.Equal(t, readerCaller, whoReads(p.c), "half a record: the caller waits for the rest")
		cancel()
		require.True(t, <-res)
		require.Equal(t, readerNone, whoReads(p.c))

		p.write(rec[300:]) // read by the reader goroutine once readGrace passed
		synctest.Wait()
		got, _, _, _ := r.snapshot()
		require.Equal(t, append([]byte("ab"), data...), got)
		require.NoError(t, p.c.Context().Err(), "the connection lives on")
		p.sendStream(id, 602, []byte("z"), false)
		synctest.Wait()
		got, _, _, _ = r.snapshot()
		require.Equal(t, byte('z'), got[len(got)-1])
	})
}

func TestInterruptReadEndsDriveRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		_, r := handOver(t, p)
		res := drive(context.Background(), p.c, pushedAtLeast(r, 100))
		synctest.Wait()
		require.Equal(t, readerCaller, whoReads(p.c))
		p.c.InterruptRead()
		require.True(t, <-res)
		require.NoError(t, p.c.Context().Err())
	})
}

// Closing the connection stops a caller's reading at once (not after the close linger),
// and the reader goroutine reads until the peer's half-close, as without callers.
func TestDriveReadEndsWhenTheConnectionCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		_, r := handOver(t, p)
		res := drive(context.Background(), p.c, pushedAtLeast(r, 100))
		synctest.Wait()
		start := time.Now()
		require.NoError(t, p.c.CloseWithError(7, "bye"))
		require.True(t, <-res)
		require.Less(t, time.Since(start), closeLinger)
		require.False(t, p.c.DriveRead(context.Background(), func() bool { return false }),
			"a closing connection is read by its reader goroutine only")
		cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
		require.Equal(t, uint64(7), cc.ErrorCode)
		p.close()
	})
}

// Something waiting for what only reading brings (here a stream Read) takes the reading
// back at once, without waiting for readGrace.
func TestStreamReadTakesTheReadingBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		handOver(t, p)
		id := p.id(1, dirUni)
		p.sendStream(id, 0, []byte("x"), false) // read by the reader goroutine, after readGrace
		s := acceptUni(t, p.c)
		readN(t, s, 1)

		// Hand over again, then wait in a Read while nobody reads.
		require.False(t, p.c.DriveRead(t.Context(), func() bool { return false }))
		p.sendStream(id, 1, []byte("y"), false)
		synctest.Wait()
		require.Equal(t, readerNone, whoReads(p.c))
		readN(t, s, 1) // "y", buffered
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, 1)
			_, err := io.ReadFull(s, b)
			if err != nil {
				b = []byte(err.Error())
			}
			got <- b
		}()
		synctest.Wait()
		require.Equal(t, readerLoop, whoReads(p.c), "the waiting Read woke the reader goroutine")
		start := time.Now()
		p.sendStream(id, 2, []byte("z"), false)
		require.Equal(t, "z", string(<-got))
		require.Less(t, time.Since(start), readGrace)
	})
}

type driveTestKey struct{}

// The registration on a caller's context is kept from one DriveRead to the next with the
// same context (no context.AfterFunc per call), still cuts a later call off when the
// context ends, is replaced for a context that ends otherwise, and is dropped when the
// connection closes.
func TestDriveReadKeepsItsContextRegistration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id, r := handOver(t, p)
		registration := func() (<-chan struct{}, bool) {
			p.c.mu.Lock()
			defer p.c.mu.Unlock()
			return p.c.driveDone, p.c.driveStop != nil
		}

		ctx1, cancel1 := context.WithCancel(t.Context())
		res := drive(ctx1, p.c, pushedAtLeast(r, 3))
		synctest.Wait()
		p.sendStream(id, 2, []byte("c"), false)
		require.True(t, <-res)
		done, ok := registration()
		require.True(t, ok)
		require.Equal(t, ctx1.Done(), done)

		// The same context, through a child that shares its Done channel: no new
		// registration, and the kept one cuts the call off.
		vctx := context.WithValue(ctx1, driveTestKey{}, 1)
		res = drive(vctx, p.c, pushedAtLeast(r, 100))
		synctest.Wait()
		require.Equal(t, readerCaller, whoReads(p.c))
		cancel1()
		require.True(t, <-res)

		ctx2, cancel2 := context.WithCancel(t.Context())
		defer cancel2()
		res = drive(ctx2, p.c, pushedAtLeast(r, 4))
		synctest.Wait()
		done, ok = registration()
		require.True(t, ok)
		require.Equal(t, ctx2.Done(), done, "another context: registered anew")
		p.sendStream(id, 3, []byte("d"), false)
		require.True(t, <-res)

		require.NoError(t, p.c.CloseWithError(0, ""))
		done, ok = registration()
		require.False(t, ok, "closing drops the registration")
		require.Nil(t, done)
	})
}

// A context that ended before the call, whose kept registration fired already, still keeps
// the call from reading.
func TestDriveReadWithEndedContextReadsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id, r := handOver(t, p)
		ctx, cancel := context.WithCancel(t.Context())
		res := drive(ctx, p.c, pushedAtLeast(r, 3))
		synctest.Wait()
		p.sendStream(id, 2, []byte("c"), false)
		require.True(t, <-res) // the registration on ctx is kept
		cancel()
		synctest.Wait()
		require.True(t, p.c.DriveRead(ctx, func() bool { return false }), "returns at once")
		require.Equal(t, int64(1), p.c.drivenRecords.Load())
	})
}

// A caller whose DriveRead was refused learns from ReadHandedOver when the reader goroutine
// hands the reading over (and not before), and can drive at once.
func TestReadHandedOverTellsARefusedCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		id := p.id(0, dirUni)
		p.sendStream(id, 0, []byte("a"), false)
		r := newRecorder()
		pushUni(t, p.c, r)
		synctest.Wait()
		require.False(t, p.c.DriveRead(t.Context(), func() bool { return false }))
		select {
		case <-p.c.ReadHandedOver():
			t.Fatal("told of a hand-over while the reader goroutine still reads")
		default:
		}

		p.sendStream(id, 1, []byte("b"), false)
		synctest.Wait()
		select {
		case <-p.c.ReadHandedOver():
		default:
			t.Fatal("the reader goroutine handed over without telling")
		}
		require.Equal(t, readerNone, whoReads(p.c))

		res := drive(t.Context(), p.c, pushedAtLeast(r, 3))
		synctest.Wait()
		require.Equal(t, readerCaller, whoReads(p.c), "the caller holds the reading")
		p.sendStream(id, 2, []byte("c"), false)
		synctest.Wait()
		require.True(t, <-res)
		require.Equal(t, int64(1), p.c.drivenRecords.Load(), "the caller read the record")
	})
}
