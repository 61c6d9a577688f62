package qmux

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// roomRecorder is a recorder that also gives room (session.RoomPushHandler): PushRoom(n)
// hands out the next n bytes of buf, as a decoder in the middle of a large message does.
type roomRecorder struct {
	*recorder
	buf     []byte
	used    int   // bytes of buf written (PushWritten)
	rooms   []int // the n of each PushRoom that gave room
	written []int // the n of each PushWritten
}

func newRoomRecorder(size int) *roomRecorder {
	return &roomRecorder{recorder: newRecorder(), buf: make([]byte, size)}
}

func (r *roomRecorder) PushRoom(n int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf)-r.used < n {
		return nil
	}
	r.rooms = append(r.rooms, n)
	return r.buf[r.used : r.used+n]
}

func (r *roomRecorder) PushWritten(n int, fin bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = append(r.written, n)
	r.data = append(r.data, r.buf[r.used:r.used+n]...)
	r.used += n
	r.fin = r.fin || fin
	return true
}

func (r *roomRecorder) counts() (rooms, written []int, pushCalls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.rooms...), append([]int(nil), r.written...), r.calls
}

// pushingUni has the peer open its first unidirectional stream with one byte, which goes to
// h (by PushData: it was buffered before Push).
func pushingUni(t *testing.T, p *peer, h session.PushHandler) (session.ReceiveStream, uint64) {
	t.Helper()
	id := p.id(0, dirUni)
	p.send(&wire.StreamFrame{StreamID: id, Data: []byte{'>'}, HasLength: true})
	synctest.Wait()
	s := pushUni(t, p.c, h)
	synctest.Wait()
	return s, id
}

func TestReadDirectIntoPushRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		r := newRoomRecorder(64 << 10)
		_, id := pushingUni(t, p, r)
		data := pattern(12_000, 8)
		took, err := directInProgress(t, p.c, id, data)(nil)
		require.NoError(t, err)
		require.True(t, took)

		rooms, written, calls := r.counts()
		require.Equal(t, []int{len(data)}, rooms)
		require.Equal(t, []int{len(data)}, written)
		require.Equal(t, 1, calls, "only the byte buffered before Push came by PushData")
		require.Equal(t, data, r.buf[:len(data)], "the data was read into the handler's room")
		got, _, _, _ := r.snapshot()
		require.Equal(t, append([]byte{'>'}, data...), got)
		p.c.mu.Lock()
		defer p.c.mu.Unlock()
		require.Equal(t, uint64(1+len(data)), p.c.readTotal, "the placed data counts as read")
	})
}

// A handler without room for all of a frame's data gets it by PushData, from a chunk.
func TestReadDirectWithoutRoomPushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		r := newRoomRecorder(10_000)
		_, id := pushingUni(t, p, r)
		data := pattern(12_000, 9)
		took, err := directInProgress(t, p.c, id, data)(nil)
		require.NoError(t, err)
		require.True(t, took)
		rooms, written, calls := r.counts()
		require.Empty(t, rooms)
		require.Empty(t, written)
		require.Equal(t, 2, calls)
		got, _, _, _ := r.snapshot()
		require.Equal(t, append([]byte{'>'}, data...), got)
	})
}

// The receive side ending while the reader writes into the room: the handler hears of it
// once (PushEnded), is not told of the bytes, and their credit returns to the connection.
func TestPushRoomEndedWhileReading(t *testing.T) {
	for _, how := range []string{"CancelRead", "close"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPeer(t, testConfig(), false)
				p.handshake(peerParams())
				r := newRoomRecorder(64 << 10)
				s, id := pushingUni(t, p, r)
				data := pattern(12_000, 10)
				finish := directInProgress(t, p.c, id, data)
				if how == "CancelRead" {
					s.CancelRead(7)
				} else {
					require.NoError(t, p.c.CloseWithError(3, "bye"))
				}
				took, err := finish(nil)
				require.NoError(t, err)
				require.True(t, took)
				rooms, written, _ := r.counts()
				require.Equal(t, []int{len(data)}, rooms)
				require.Empty(t, written, "no PushWritten after PushEnded")
				_, _, endedN, _ := r.snapshot()
				require.Equal(t, 1, endedN)
				if how == "CancelRead" {
					p.c.mu.Lock()
					defer p.c.mu.Unlock()
					require.Equal(t, uint64(1+len(data)), p.c.readTotal, "the discarded data's credit returns")
				}
			})
		})
	}
}

// A DriveRead caller cut off while it reads a large frame's data straight into place leaves
// the rest to the next reader, which finishes the frame before anything else.
func TestDriveReadCutMidDirectFrameResumes(t *testing.T) {
	for _, withRoom := range []bool{false, true} {
		name := "chunk"
		if withRoom {
			name = "room"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPeer(t, testConfig(), false)
				p.handshake(peerParams())
				var h session.PushHandler
				var rec *recorder
				if withRoom {
					rr := newRoomRecorder(64 << 10)
					h, rec = rr, rr.recorder
				} else {
					rec = newRecorder()
					h = rec
				}
				id := p.id(0, dirUni)
				p.sendStream(id, 0, []byte("a"), false)
				pushUni(t, p.c, h)
				synctest.Wait()
				require.False(t, p.c.DriveRead(t.Context(), func() bool { return false }))
				p.sendStream(id, 1, []byte("b"), false)
				synctest.Wait()
				require.Equal(t, readerNone, whoReads(p.c))

				ctx, cancel := context.WithCancel(t.Context())
				res := drive(ctx, p.c, pushedAtLeast(rec, 100_000))
				synctest.Wait()
				data := pattern(12_000, 11)
				frame := appendFrames(nil, &wire.StreamFrame{StreamID: id, Offset: 2, Data: data, HasLength: true})
				frame = append(wire.AppendRecordHeader(nil, uint64(len(frame))), frame...)
				p.write(frame[:5000])
				synctest.Wait()
				require.Equal(t, readerCaller, whoReads(p.c))
				cancel()
				require.True(t, <-res)
				require.Equal(t, readerNone, whoReads(p.c))
				// DriveRead returned: what it left is the next reader's, and ours to look at.
				require.Len(t, p.c.direct.b, len(data), "the caller read the frame's data straight into place")
				require.Less(t, p.c.direct.got, len(data))
				if withRoom {
					rooms, written, _ := h.(*roomRecorder).counts()
					require.Equal(t, []int{len(data)}, rooms)
					require.Empty(t, written)
				}

				p.write(frame[5000:]) // read by the reader goroutine once readGrace passed
				synctest.Wait()
				got, _, _, _ := rec.snapshot()
				require.Equal(t, append([]byte("ab"), data...), got)
				require.NoError(t, p.c.Context().Err(), "the connection lives on")
				p.sendStream(id, 2+uint64(len(data)), []byte("z"), false)
				synctest.Wait()
				got, _, _, _ = rec.snapshot()
				require.Equal(t, byte('z'), got[len(got)-1])
			})
		})
	}
}
