package qmux

// conn_streams.go: opening and accepting streams, stream IDs, and stream limits
// (MAX_STREAMS, RFC 9000 §4.6).
//
// Invariants:
//   - streams.m holds every stream not yet finished on both sides; a finished one is
//     forgotten (streamMaybeDoneLocked), and frames for it are then ignored.
//   - We open stream index nextLocal[dir] only while it is below the peer's limit
//     peerLimit[dir]; openWait is closed (and replaced) whenever a limit rises.
//   - The peer may open indexes below limit[dir]; opening index i opens every lower one of
//     the same type too (RFC 9000 §3.2), and they wait in acceptQ until accepted. Each
//     peer-initiated stream that finishes after being accepted raises limit[dir] by one
//     (MAX_STREAMS).

import (
	"context"
	"errors"
	"fmt"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// Stream IDs (RFC 9000 §2.1): bit 0 is the initiator (0 client, 1 server), bit 1 the
// direction (0 bidirectional, 1 unidirectional).
const (
	dirBidi = 0
	dirUni  = 1
)

func streamID(index uint64, dir int, client bool) uint64 {
	id := index<<2 | uint64(dir)<<1
	if !client {
		id |= 1
	}
	return id
}

func streamDir(id uint64) int          { return int(id>>1) & 1 }
func streamIndex(id uint64) uint64     { return id >> 2 }
func initiatedByClient(id uint64) bool { return id&1 == 0 }

// streamsState is the connection's streams and stream limits, per direction (dirBidi,
// dirUni).
type streamsState struct {
	m map[uint64]*stream
	// Streams we open: next index, the peer's cumulative limit, and whether we sent
	// STREAMS_BLOCKED at that limit.
	nextLocal   [2]uint64
	peerLimit   [2]uint64
	blockedSent [2]bool
	openWait    chan struct{} // closed and replaced when a peer limit rises
	// Streams the peer opens: next unseen index, our cumulative limit, and those waiting to
	// be accepted (acceptSig wakes an Accept).
	nextRemote [2]uint64
	limit      [2]uint64
	acceptQ    [2][]*stream
	acceptSig  [2]chan struct{}
	// OnStreamCapacity subscribers, called (outside mu) when capNotify is set.
	subs      map[int]func(session.Capacity)
	nextSub   int
	capNotify bool
}

func (s *streamsState) init(local *wire.TransportParameters) {
	s.m = make(map[uint64]*stream)
	s.openWait = make(chan struct{})
	s.acceptSig = [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	s.limit = [2]uint64{local.InitialMaxStreamsBidi, local.InitialMaxStreamsUni}
}

// OpenStream implements session.Conn.
func (c *conn) OpenStream(ctx context.Context) (session.Stream, error) {
	s, err := c.open(ctx, dirBidi)
	if err != nil {
		return nil, err
	}
	return bidiHandle{s}, nil
}

// OpenUniStream implements session.Conn.
func (c *conn) OpenUniStream(ctx context.Context) (session.SendStream, error) {
	s, err := c.open(ctx, dirUni)
	if err != nil {
		return nil, err
	}
	return sendHandle{s}, nil
}

// open opens a stream, waiting for the peer's stream credit until ctx ends.
func (c *conn) open(ctx context.Context, dir int) (*stream, error) {
	c.mu.Lock()
	for {
		if err := c.closing.err; err != nil {
			c.mu.Unlock()
			return nil, err
		}
		st := &c.streams
		if st.nextLocal[dir] < st.peerLimit[dir] {
			idx := st.nextLocal[dir]
			st.nextLocal[dir]++
			s := newStream(c, streamID(idx, dir, c.client), true)
			st.m[s.id] = s
			c.mu.Unlock()
			return s, nil
		}
		// Tell the peer we are blocked (STREAMS_BLOCKED), once per limit.
		if c.gotParams && !st.blockedSent[dir] {
			st.blockedSent[dir] = true
			c.send.ctrl = append(c.send.ctrl, &wire.StreamsBlockedFrame{Bidi: dir == dirBidi, MaximumStreams: st.peerLimit[dir]})
			c.signalWriter()
		}
		ch := st.openWait
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &session.TimeoutError{Op: "open stream"}
			}
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
}

// AcceptStream implements session.Conn.
func (c *conn) AcceptStream(ctx context.Context) (session.Stream, error) {
	s, err := c.accept(ctx, dirBidi)
	if err != nil {
		return nil, err
	}
	return bidiHandle{s}, nil
}

// AcceptUniStream implements session.Conn.
func (c *conn) AcceptUniStream(ctx context.Context) (session.ReceiveStream, error) {
	s, err := c.accept(ctx, dirUni)
	if err != nil {
		return nil, err
	}
	return recvHandle{s}, nil
}

func (c *conn) accept(ctx context.Context, dir int) (*stream, error) {
	for {
		c.mu.Lock()
		if q := c.streams.acceptQ[dir]; len(q) > 0 {
			s := q[0]
			q[0] = nil
			c.streams.acceptQ[dir] = q[1:]
			s.accepted = true
			c.streamMaybeDoneLocked(s)
			c.mu.Unlock()
			return s, nil
		}
		if err := c.closing.err; err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.mu.Unlock()
		select {
		case <-c.streams.acceptSig[dir]:
		case <-c.ctx.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// A QMux connection always knows its peer's stream limits: it parses every MAX_STREAMS.
var _ session.CapacityConn = (*conn)(nil)

// StreamCapacity implements session.CapacityConn.
func (c *conn) StreamCapacity() session.Capacity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.capacityLocked()
}

func (c *conn) capacityLocked() session.Capacity {
	st := &c.streams
	return session.Capacity{
		Bidi: int64(st.peerLimit[dirBidi] - st.nextLocal[dirBidi]),
		Uni:  int64(st.peerLimit[dirUni] - st.nextLocal[dirUni]),
	}
}

// OnStreamCapacity implements session.CapacityConn.
func (c *conn) OnStreamCapacity(f func(session.Capacity)) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.streams
	if st.subs == nil {
		st.subs = make(map[int]func(session.Capacity))
	}
	id := st.nextSub
	st.nextSub++
	st.subs[id] = f
	return func() {
		c.mu.Lock()
		delete(c.streams.subs, id)
		c.mu.Unlock()
	}
}

// raiseLimitLocked takes the peer's new cumulative limit for streams we open.
func (c *conn) raiseLimitLocked(dir int, limit uint64) {
	st := &c.streams
	if limit <= st.peerLimit[dir] {
		return
	}
	st.peerLimit[dir] = limit
	st.blockedSent[dir] = false
	close(st.openWait)
	st.openWait = make(chan struct{})
	st.capNotify = true
}

// notifyCapacity calls the stream-capacity subscribers, outside the lock, if a limit rose.
func (c *conn) notifyCapacity() {
	c.mu.Lock()
	if !c.streams.capNotify {
		c.mu.Unlock()
		return
	}
	c.streams.capNotify = false
	capacity := c.capacityLocked()
	fs := make([]func(session.Capacity), 0, len(c.streams.subs))
	for _, f := range c.streams.subs {
		fs = append(fs, f)
	}
	c.mu.Unlock()
	for _, f := range fs {
		f(capacity)
	}
}

// streamLocked returns the stream a frame from the peer refers to, creating peer-initiated
// streams on first use. It returns nil, true for a stream already finished and forgotten,
// and closes the connection (returning false) for an ID the peer may not use.
func (c *conn) streamLocked(id uint64, ft wire.FrameType) (*stream, bool) {
	st := &c.streams
	if s, ok := st.m[id]; ok {
		return s, true
	}
	dir := streamDir(id)
	idx := streamIndex(id)
	if initiatedByClient(id) == c.client {
		// Ours: it must have been opened.
		if idx >= st.nextLocal[dir] {
			c.protocolErrorLocked(wire.StreamStateError, ft, fmt.Sprintf("stream %d not yet opened", id))
			return nil, false
		}
		return nil, true
	}
	if idx < st.nextRemote[dir] {
		return nil, true
	}
	if idx >= st.limit[dir] {
		c.protocolErrorLocked(wire.StreamLimitError, ft, fmt.Sprintf("stream %d exceeds the stream limit %d", id, st.limit[dir]))
		return nil, false
	}
	var s *stream
	for ; st.nextRemote[dir] <= idx; st.nextRemote[dir]++ {
		s = newStream(c, streamID(st.nextRemote[dir], dir, !c.client), false)
		st.m[s.id] = s
		st.acceptQ[dir] = append(st.acceptQ[dir], s)
	}
	signal(st.acceptSig[dir])
	return s, true
}

// recvStreamLocked is streamLocked for frames that need a receive side.
func (c *conn) recvStreamLocked(id uint64, ft wire.FrameType) (*stream, bool) {
	if streamDir(id) == dirUni && initiatedByClient(id) == c.client {
		c.protocolErrorLocked(wire.StreamStateError, ft, fmt.Sprintf("stream %d is our send-only stream", id))
		return nil, false
	}
	return c.streamLocked(id, ft)
}

// sendStreamLocked is streamLocked for frames that need a send side.
func (c *conn) sendStreamLocked(id uint64, ft wire.FrameType) (*stream, bool) {
	if streamDir(id) == dirUni && initiatedByClient(id) != c.client {
		c.protocolErrorLocked(wire.StreamStateError, ft, fmt.Sprintf("stream %d is the peer's send-only stream", id))
		return nil, false
	}
	return c.streamLocked(id, ft)
}

// streamMaybeDoneLocked forgets a stream whose both sides are finished; a finished
// peer-initiated stream lets the peer open another (MAX_STREAMS).
func (c *conn) streamMaybeDoneLocked(s *stream) {
	if s.done || !s.sendDone() || !s.recvDone() {
		return
	}
	local := initiatedByClient(s.id) == c.client
	if !local && !s.accepted {
		return // still in the accept queue
	}
	s.done = true
	delete(c.streams.m, s.id)
	if !local && c.closing.err == nil {
		dir := streamDir(s.id)
		c.streams.limit[dir]++
		c.send.ctrl = append(c.send.ctrl, &wire.MaxStreamsFrame{Bidi: dir == dirBidi, MaximumStreams: c.streams.limit[dir]})
		c.signalWriter()
	}
}
