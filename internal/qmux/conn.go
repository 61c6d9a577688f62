package qmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

const (
	// recordPayload is the Frames size of the records we send: with a 2-byte Size it fills
	// one 16 KiB TLS record (the draft's default max_record_size).
	recordPayload = wire.DefaultMaxRecordSize
	// recordsPerWrite bounds how many records one transport write carries.
	recordsPerWrite = 8
	// streamQuantum is how much of one stream goes out before the next stream's turn.
	streamQuantum = 32 << 10
	// closeLinger bounds the wait for the peer's half-close after we closed.
	closeLinger = 2 * time.Second
	// Initial flow-control windows; they grow (auto-tuning) up to the configured maxima.
	initialStreamWindow = 512 << 10
	initialConnWindow   = 1 << 20
	// minIdleTimeout is the shortest idle timeout we enforce, whatever the peer advertises:
	// a deployed stack advertises 30 ms.
	minIdleTimeout = time.Second
)

// conn is a QMux connection over a reliable, ordered, secure byte stream (TLS in production,
// net.Pipe in protocol tests). One goroutine reads the transport: the reader goroutine, or,
// while it lets it, a DriveRead caller (a stream pool's Recv), and the reading never waits on
// an application (forward progress); one writes records, the writer goroutine
// or, for a small Write that finds it idle, the Write's caller (writeInlineLocked); all
// state is guarded by mu.
type conn struct {
	nc     net.Conn
	client bool
	cfg    *session.Config
	state  session.State
	local  wire.TransportParameters

	ctx    context.Context
	cancel context.CancelCauseFunc

	// The reader and writer goroutines: ended is closed when both have returned, and then
	// onEnded runs (the core forgets the connection) without a goroutine waiting for it.
	running atomic.Int32
	ended   chan struct{}
	endMu   sync.Mutex
	isEnded bool
	onEnded func()

	mu        sync.Mutex
	closeErr  error // set once the connection is closing
	closeSent bool  // our CONNECTION_CLOSE (if any) is queued
	peer      wire.TransportParameters
	gotParams bool
	params    chan struct{} // closed when the peer's parameters arrived

	streams map[uint64]*stream
	// Streams we open: next index, and the peer's cumulative limit, per direction.
	nextLocal [2]uint64
	peerLimit [2]uint64
	openWait  chan struct{} // closed and replaced when a peer limit rises
	subs      map[int]func(session.Capacity)
	nextSub   int
	capNotify bool
	// blockedSent: STREAMS_BLOCKED sent at the current limit, per direction.
	blockedSent [2]bool
	readDone    chan struct{}
	// Streams the peer opens: next unseen index, our cumulative limit, finished count.
	nextRemote [2]uint64
	limit      [2]uint64
	acceptQ    [2][]*stream
	acceptSig  [2]chan struct{}

	// Connection-level flow control.
	sendMax, sent             uint64
	recvMax, recvd, readTotal uint64
	connWindow                uint64
	lastConnUpdate            time.Time
	dataBlockedAt             uint64
	connBlocked               []*stream // streams waiting for MAX_DATA

	// Writer.
	ctrl       []wire.Frame
	sendQ      []*stream
	wake       chan struct{}
	paramsSent bool
	// writing: a goroutine holds the writing role, the only one that packs records and
	// writes them to the transport: the writer goroutine for a burst, or a stream Write's
	// caller for one inline write (writeInlineLocked). Records go out in the order
	// fillLocked makes them, whoever writes them.
	writing bool
	// sock is the transport's socket when it can attempt writes without blocking (over
	// TCP), which inline writes need; nil otherwise (net.Pipe in protocol tests).
	sock *sockConn
	// For tests: inline writes made, and how many of them left bytes to the writer.
	inlineWrites, inlineHandoffs int

	// Reading: one goroutine at a time reads the transport, the reader goroutine or a
	// DriveRead caller (reader); see session.ReadDriver. rr and parser belong to it.
	rr        *wire.RecordReader
	parser    wire.Parser
	direct    directRead // a STREAM frame's data being read straight into place (readDirect)
	reader    int
	wantRead  bool  // a DriveRead caller found the reader goroutine reading
	readWaits int   // goroutines waiting for what only reading brings (waitingForReadLocked)
	readFail  error // a caller's read failed: the reader goroutine ends the reading with it
	readEnded bool
	// readerWake wakes the reader goroutine when the reading may be its own again.
	readerWake chan struct{}
	// handedOver tells a DriveRead caller that found the reader reading that the reading is
	// free now (ReadHandedOver).
	handedOver chan struct{}
	// The grace timer is lazy (see armGraceLocked): graceArmed tells whether it is
	// pending, graceGen is driveGen when it was last armed or looked at.
	graceTimer *time.Timer
	graceArmed bool
	graceGen   uint64
	driveGen   uint64 // counts DriveRead calls, so that a late cut misses the next one
	// driveDone is the Done channel of the last DriveRead context that had one, and
	// driveStop its registration (context.AfterFunc), kept for the next call.
	driveDone <-chan struct{}
	driveStop func() bool
	cut       bool      // a read deadline cuts the current caller's read off
	linger    time.Time // the read deadline shutdown set, which a cut must not clear
	// For tests: records read by DriveRead callers.
	drivenRecords atomic.Int64

	// QX_PING.
	pingSent, pingAcked uint64
	peerPing            uint64 // largest request received
	gotPeerPing         bool
	pingPending         bool // a response is owed
	pingAt              time.Time
	rtt                 time.Duration

	idle, keepAlive time.Duration
	// The idle and keep-alive timers are lazy (see activityLocked): activity records its
	// time in idleFrom (and keepFrom, for receipts), and a timer that fires early re-arms
	// itself for what remains.
	idleTimer          *time.Timer
	keepTimer          *time.Timer
	idleFrom, keepFrom time.Time
	sentSinceRecv      bool // a send restarted the idle timer since the last receipt
	// recvSinceSend: a record arrived since we last packed records (inlineLocked). Unlike
	// sentSinceRecv it changes when records are packed, under mu, not after their write: an
	// answer that arrives while our write is in progress comes after it.
	recvSinceSend bool
}

var (
	_ session.Conn       = (*conn)(nil)
	_ session.ReadDriver = (*conn)(nil)
)

func newConn(nc net.Conn, client bool, cfg *session.Config, state session.State) *conn {
	c := &conn{
		nc:         nc,
		sock:       sockOf(nc),
		client:     client,
		cfg:        cfg,
		state:      state,
		params:     make(chan struct{}),
		streams:    make(map[uint64]*stream),
		openWait:   make(chan struct{}),
		wake:       make(chan struct{}, 1),
		acceptSig:  [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)},
		readDone:   make(chan struct{}),
		readerWake: make(chan struct{}, 1),
		handedOver: make(chan struct{}, 1),
		connWindow: min(initialConnWindow, cfg.ConnectionWindow()),
		rtt:        time.Millisecond,
	}
	streamWin := min(initialStreamWindow, cfg.StreamWindow())
	c.local = wire.TransportParameters{
		MaxIdleTimeout:                 cfg.Idle(),
		InitialMaxData:                 c.connWindow,
		InitialMaxStreamDataBidiLocal:  streamWin,
		InitialMaxStreamDataBidiRemote: streamWin,
		InitialMaxStreamDataUni:        streamWin,
		InitialMaxStreamsBidi:          uint64(cfg.IncomingStreams()),
		InitialMaxStreamsUni:           uint64(cfg.IncomingUniStreams()),
	}
	c.rr = wire.NewRecordReader(nc, wire.DefaultMaxRecordSize)
	c.recvMax = c.local.InitialMaxData
	c.limit = [2]uint64{c.local.InitialMaxStreamsBidi, c.local.InitialMaxStreamsUni}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.state.Core = "qmux"
	c.signalWriter() // our parameters go out at once, first
	c.ended = make(chan struct{})
	c.running.Store(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// goroutineDone is deferred by the reader and the writer: the last one to return ends the
// connection's life.
func (c *conn) goroutineDone() {
	if c.running.Add(-1) != 0 {
		return
	}
	close(c.ended)
	c.endMu.Lock()
	f := c.onEnded
	c.isEnded, c.onEnded = true, nil
	c.endMu.Unlock()
	if f != nil {
		f()
	}
}

// whenEnded arranges for f to run once the connection's goroutines have returned, at once if
// they have. One f per connection.
func (c *conn) whenEnded(f func()) {
	c.endMu.Lock()
	if !c.isEnded {
		c.onEnded = f
		c.endMu.Unlock()
		return
	}
	c.endMu.Unlock()
	f()
}

// waitParams waits for the peer's QX_TRANSPORT_PARAMETERS. On a client over TLS 1.3 this is
// also the server's acceptance of our certificate: the server sends its parameters only
// after its handshake, which includes verifying ours.
func (c *conn) waitParams(ctx context.Context) error {
	select {
	case <-c.params:
		return nil
	case <-c.ctx.Done():
		// A peer that accepted us and closed at once: its parameters came first and were its
		// acceptance (select picks at random among ready cases); the caller gets the conn,
		// already closed, as it would have a moment earlier.
		select {
		case <-c.params:
			return nil
		default:
		}
		return context.Cause(c.ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// --- session.Conn -----------------------------------------------------------------------

func (c *conn) OpenStream(ctx context.Context) (session.Stream, error) {
	s, err := c.open(ctx, dirBidi)
	if err != nil {
		return nil, err
	}
	return bidiHandle{s}, nil
}

func (c *conn) OpenUniStream(ctx context.Context) (session.SendStream, error) {
	s, err := c.open(ctx, dirUni)
	if err != nil {
		return nil, err
	}
	return sendHandle{s}, nil
}

func (c *conn) open(ctx context.Context, dir int) (*stream, error) {
	c.mu.Lock()
	for {
		if c.closeErr != nil {
			err := c.closeErr
			c.mu.Unlock()
			return nil, err
		}
		if c.nextLocal[dir] < c.peerLimit[dir] {
			idx := c.nextLocal[dir]
			c.nextLocal[dir]++
			s := newStream(c, streamID(idx, dir, c.client), true)
			c.streams[s.id] = s
			c.mu.Unlock()
			return s, nil
		}
		// Tell the peer we are blocked (STREAMS_BLOCKED), once per limit.
		if c.gotParams && !c.blockedSent[dir] {
			c.blockedSent[dir] = true
			c.ctrl = append(c.ctrl, &wire.StreamsBlockedFrame{Bidi: dir == dirBidi, MaximumStreams: c.peerLimit[dir]})
			c.signalWriter()
		}
		ch := c.openWait
		c.waitingForReadLocked() // for the peer's MAX_STREAMS
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			c.doneWaitingLocked()
			c.mu.Unlock()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &session.TimeoutError{Op: "open stream"}
			}
			return nil, ctx.Err()
		}
		c.mu.Lock()
		c.doneWaitingLocked()
	}
}

func (c *conn) AcceptStream(ctx context.Context) (session.Stream, error) {
	s, err := c.accept(ctx, dirBidi)
	if err != nil {
		return nil, err
	}
	return bidiHandle{s}, nil
}

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
		if len(c.acceptQ[dir]) > 0 {
			s := c.acceptQ[dir][0]
			c.acceptQ[dir][0] = nil
			c.acceptQ[dir] = c.acceptQ[dir][1:]
			s.accepted = true
			c.streamMaybeDone(s)
			c.mu.Unlock()
			return s, nil
		}
		if c.closeErr != nil {
			err := c.closeErr
			c.mu.Unlock()
			return nil, err
		}
		c.mu.Unlock()
		select {
		case <-c.acceptSig[dir]:
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
	return session.Capacity{
		Bidi: int64(c.peerLimit[dirBidi] - c.nextLocal[dirBidi]),
		Uni:  int64(c.peerLimit[dirUni] - c.nextLocal[dirUni]),
	}
}

func (c *conn) OnStreamCapacity(f func(session.Capacity)) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil {
		c.subs = make(map[int]func(session.Capacity))
	}
	id := c.nextSub
	c.nextSub++
	c.subs[id] = f
	return func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

// maxReason bounds the reason phrase we send, so a CONNECTION_CLOSE fits one record.
const maxReason = 1024

func truncate(reason string) string {
	if len(reason) > maxReason {
		return reason[:maxReason]
	}
	return reason
}

func (c *conn) CloseWithError(code session.ApplicationErrorCode, reason string) error {
	reason = truncate(reason)
	c.closeWith(&session.CloseError{Kind: session.ClosedByApplication, Code: uint64(code), Reason: reason},
		&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: uint64(code), Reason: []byte(reason)})
	return nil
}

func (c *conn) Context() context.Context { return c.ctx }

func (c *conn) State() session.State { return c.state }

// --- closing ------------------------------------------------------------------------------

// closeWith starts closing once: streams and waiters fail with err; frame (our
// CONNECTION_CLOSE, or nil when the peer closed or the idle timer fired) is the last thing
// the writer sends before half-closing the transport.
func (c *conn) closeWith(err *session.CloseError, frame wire.Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(err, frame)
}

func (c *conn) closeLocked(err *session.CloseError, frame wire.Frame) {
	if c.closeErr != nil {
		return
	}
	c.closeErr = err
	if frame != nil {
		c.ctrl = append(c.ctrl[:0], frame)
	} else {
		c.ctrl = c.ctrl[:0]
	}
	c.sendQ = nil
	for _, s := range c.streams {
		signal(s.wSignal)
		signal(s.rSignal)
		s.endPushLocked(err)
	}
	signal(c.acceptSig[0])
	signal(c.acceptSig[1])
	close(c.openWait)
	c.openWait = make(chan struct{})
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	if c.keepTimer != nil {
		c.keepTimer.Stop()
	}
	// The reader goroutine reads until the peer's half-close (shutdown): a DriveRead caller
	// stops reading, and the reader goroutine takes over.
	c.cutLocked(c.driveGen)
	c.kickReaderLocked()
	if c.driveStop != nil {
		c.driveStop() // its func runs on a goroutine of its own: no lock is held against it
		c.driveStop, c.driveDone = nil, nil
	}
	c.cancel(err)
	// A writer blocked on a peer that does not read must not hold the close up: it may take
	// the linger time to send our CONNECTION_CLOSE, no more.
	if frame != nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeLinger))
	} else {
		_ = c.nc.SetWriteDeadline(time.Now())
	}
	c.signalWriter()
}

// protocolError closes the connection because the peer broke the protocol.
func (c *conn) protocolErrorLocked(code wire.TransportErrorCode, ft wire.FrameType, reason string) {
	reason = truncate(reason)
	c.closeLocked(&session.CloseError{Kind: session.ClosedByTransportError, Code: uint64(code), Reason: reason},
		&wire.ConnectionCloseFrame{ErrorCode: uint64(code), FrameType: uint64(ft), Reason: []byte(reason)})
}

// transportFailed ends the connection after the byte stream failed or ended without
// CONNECTION_CLOSE.
func (c *conn) transportFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transportFailedLocked(err)
}

func (c *conn) transportFailedLocked(err error) {
	if c.closeErr != nil {
		return
	}
	ce := &session.CloseError{Kind: session.ClosedByNetwork, Err: err}
	if errors.Is(err, io.EOF) {
		ce.Remote = true
		ce.Err = errors.New("peer closed the transport without CONNECTION_CLOSE")
	}
	c.closeLocked(ce, nil)
}

// --- reading ------------------------------------------------------------------------------

// Who reads the transport (conn.reader); see session.ReadDriver.
const (
	readerNone   = iota // nobody: the reader goroutine waits to be woken
	readerLoop          // the reader goroutine
	readerCaller        // a caller of DriveRead
)

// readGrace is how long the transport may go unread after a DriveRead caller stopped
// reading, before the reader goroutine takes the reading back (at least readGrace, less
// than twice it: see armGraceLocked). A stream pool's Recv that drives comes back within it
// while messages flow (after handling one message and sending its answer, or doing some
// work between messages); anything urgent (a stream Read, a write waiting for credit, an
// open waiting for MAX_STREAMS, the connection's end) takes the reading back at once. What
// waits for it is what nobody asked for yet (a PING to answer, data of a stream nobody
// reads, the peer's close), for which milliseconds do not matter.
//
// While a caller keeps reading, the grace timer fires once per readGrace (and is re-armed),
// each time on a goroutine of its own that wakes an idle thread. At 500 µs that was 557
// timer goroutines per 10,000 round trips of a 64-byte request/response loop on loopback,
// 0.9 µs more of the scheduler's CPU time per round trip than at 4 ms, with 113. A Recv
// loop that works for a millisecond or two per message also keeps the reading.
const readGrace = 4 * time.Millisecond

// readLoop is the connection's reader goroutine. It reads whenever no DriveRead caller does,
// and is the one that sees reading end (readDone).
func (c *conn) readLoop() {
	defer c.goroutineDone()
	defer close(c.readDone)
	for {
		c.mu.Lock()
		for c.reader != readerNone {
			c.mu.Unlock()
			<-c.readerWake
			c.mu.Lock()
		}
		c.reader = readerLoop
		fail := c.readFail
		c.readFail = nil
		c.mu.Unlock()
		if fail == nil {
			fail = c.readUntilWanted()
			if fail == nil {
				<-c.readerWake // handed over: wait until the reading is ours again
				continue
			}
		}
		c.readFailed(fail)
		return
	}
}

// readUntilWanted reads records until reading fails (it returns the error) or a DriveRead
// caller asked for the reading and nothing needs the reader goroutine to keep it (it hands
// the reading over and returns nil).
func (c *conn) readUntilWanted() error {
	for {
		if _, err := c.readRecord(true); err != nil {
			return err
		}
		c.mu.Lock()
		if c.wantRead && c.readWaits == 0 && c.closeErr == nil {
			c.wantRead = false
			select {
			case <-c.readerWake: // a wake-up from before: the reading was ours anyway
			default:
			}
			c.reader = readerNone
			c.armGraceLocked()
			c.mu.Unlock()
			signal(c.handedOver)
			return nil
		}
		c.mu.Unlock()
	}
}

// readFailed ends reading after err.
func (c *conn) readFailed(err error) {
	var we *wire.Error
	if errors.As(err, &we) {
		c.mu.Lock()
		c.protocolErrorLocked(we.Code, wire.FrameType(we.FrameType), we.Reason)
		c.mu.Unlock()
		// Discard what arrives until the peer half-closes (bounded by shutdown's read
		// deadline), as after a frame-level error: closing with unread data would reset the
		// TCP connection and could lose our CONNECTION_CLOSE.
		_, _ = io.Copy(io.Discard, c.nc)
	} else {
		c.transportFailed(err)
	}
	c.mu.Lock()
	c.readEnded = true
	c.mu.Unlock()
	c.finishReading()
}

// readRecord reads one record and handles its frames. A large STREAM frame's data may be
// read straight into place (readDirect). A DriveRead caller's reads are resumable: a
// deadline that cuts one off leaves a state the next reader resumes from (a record in the
// record reader's buffer, or the rest of a frame's data read straight into place, which
// the next reader finishes first). An error is the transport's or the peer's (a
// *wire.Error); a timeout of a caller's read is not final.
func (c *conn) readRecord(loop bool) (closing bool, err error) {
	if c.direct.b != nil {
		return false, c.readDirectRest(c.rr, true)
	}
	var rec []byte
	var more int
	if loop {
		rec, more, err = c.rr.Head()
	} else {
		rec, more, err = c.rr.HeadResumable()
	}
	if err == nil && more > 0 {
		if took, err := c.readDirect(c.rr, &c.parser, rec, more); took {
			return false, err
		}
		if loop {
			rec, err = c.rr.Next()
		} else {
			rec, err = c.rr.NextResumable()
		}
	}
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if c.closeErr != nil {
		// Closing: discard what arrives until the peer half-closes.
		c.mu.Unlock()
		return true, nil
	}
	for len(rec) > 0 && c.closeErr == nil {
		f, n, err := c.parser.ParseNext(rec)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				we = &wire.Error{Code: wire.FrameEncodingError, Reason: err.Error()}
			}
			c.protocolErrorLocked(we.Code, wire.FrameType(we.FrameType), we.Reason)
			break
		}
		rec = rec[n:]
		c.handleFrameLocked(f)
	}
	c.activityLocked(false)
	closing = c.closeErr != nil
	c.mu.Unlock()
	c.notifyCapacity()
	return closing, nil
}

// DriveRead implements session.ReadDriver.
func (c *conn) DriveRead(ctx context.Context, done func() bool) bool {
	c.mu.Lock()
	if c.reader != readerNone || c.readEnded || c.readFail != nil || c.closeErr != nil {
		if c.reader == readerLoop {
			c.wantRead = true
		}
		c.mu.Unlock()
		return false
	}
	c.reader = readerCaller
	c.driveGen++
	// The caller's context cuts the read off when it ends. A caller passes the same context
	// call after call, typically (a Recv loop's): its registration is kept for the next
	// call, and made anew only for a context that ends otherwise (another Done channel).
	// context.AfterFunc per call would cost allocations and a lock on a context the
	// caller's other goroutines share.
	var old func() bool
	ctxDone := ctx.Done()
	register := ctxDone != nil && ctxDone != c.driveDone
	if register {
		old, c.driveStop, c.driveDone = c.driveStop, nil, ctxDone
	}
	c.mu.Unlock()
	if register {
		if old != nil {
			old()
		}
		stop := context.AfterFunc(ctx, c.cutCurrentDrive)
		c.mu.Lock()
		if c.driveDone == ctxDone && c.closeErr == nil {
			c.driveStop, stop = stop, nil
		}
		c.mu.Unlock()
		if stop != nil {
			stop()
		}
	}
	var err error
	// A context that ended before we held the reading would not cut us off (a kept
	// registration fires once); one that ends from here on does.
	if ctx.Err() != nil {
		done = func() bool { return true }
	}
	for !done() {
		var closing bool
		if closing, err = c.readRecord(false); err != nil || closing {
			break // closing: the reader goroutine reads until the peer's half-close
		}
		c.drivenRecords.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		// Our read was cut off (or was about to be): the next reader must not find the
		// deadline, unless shutdown's replaced it.
		c.cut = false
		_ = c.nc.SetReadDeadline(c.linger)
		if wire.IsTimeout(err) {
			err = nil
		}
	}
	if err != nil && !(wire.IsTimeout(err) && c.closeErr != nil) {
		c.readFail = err // the reader goroutine ends the reading
	}
	c.reader = readerNone
	if c.readFail != nil || c.closeErr != nil || c.readWaits > 0 {
		signal(c.readerWake)
	} else {
		c.armGraceLocked()
	}
	return true
}

// ReadHandedOver implements session.ReadDriver.
func (c *conn) ReadHandedOver() <-chan struct{} { return c.handedOver }

// InterruptRead implements session.ReadDriver.
func (c *conn) InterruptRead() { c.cutCurrentDrive() }

// cutCurrentDrive cuts off the read of the DriveRead caller reading now, if any: the
// context of a DriveRead call ended. (A call with another context that it finds returns
// early; its caller calls again.)
func (c *conn) cutCurrentDrive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutLocked(c.driveGen)
}

func (c *conn) cutLocked(gen uint64) {
	if c.reader != readerCaller || c.driveGen != gen || c.cut {
		return
	}
	c.cut = true
	_ = c.nc.SetReadDeadline(time.Now())
}

// armGraceLocked wakes the reader goroutine readGrace from now, or up to readGrace later,
// unless a DriveRead caller takes the reading first. A Recv loop ends a DriveRead call per
// message, and a Timer.Reset each time would cost more than a small message (a deadline
// earlier than the runtime's next one wakes an idle thread to watch it) and a clock read
// still a little. So a pending timer is left alone: when it fires, onGrace sees from driveGen
// whether a caller read since, and if so waits readGrace again.
func (c *conn) armGraceLocked() {
	if c.graceArmed {
		return
	}
	c.graceArmed, c.graceGen = true, c.driveGen
	if c.graceTimer == nil {
		c.graceTimer = time.AfterFunc(readGrace, c.onGrace)
		return
	}
	c.graceTimer.Reset(readGrace)
}

func (c *conn) onGrace() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.graceArmed = false
	if c.reader != readerNone {
		return // somebody reads; a DriveRead caller arms the timer again when it stops
	}
	if c.graceGen != c.driveGen {
		// A caller read since the timer was armed: the transport may have gone unread
		// for less than readGrace.
		c.graceArmed, c.graceGen = true, c.driveGen
		c.graceTimer.Reset(readGrace)
		return
	}
	c.kickReaderLocked()
}

// kickReaderLocked wakes the reader goroutine when nobody reads the transport.
func (c *conn) kickReaderLocked() {
	if c.reader == readerNone && !c.readEnded {
		signal(c.readerWake)
	}
}

// waitingForReadLocked counts a goroutine that is about to wait for something only reading
// brings (stream data, flow-control credit, a stream limit), and makes sure somebody reads.
// The caller calls doneWaitingLocked when its wait is over.
func (c *conn) waitingForReadLocked() {
	c.readWaits++
	c.kickReaderLocked()
}

func (c *conn) doneWaitingLocked() { c.readWaits-- }

// directMin is the least STREAM data readDirect takes: a chunk holding less would be mostly
// unused room (appendData, which copies, fills chunks up).
const directMin = 8 << 10

// directRead is the data of a STREAM frame that readDirect reads from the transport
// straight into where it goes next: into b, the push handler's room (placed) or the bytes of
// chunk. A DriveRead caller's read cut off by its deadline leaves it unfinished (got < len(b)),
// for the next reader to finish. It belongs to the reader, as the record reader does.
type directRead struct {
	f      wire.StreamFrame
	b      []byte
	got    int
	chunk  *[]byte
	placed bool
}

// readDirect takes a record whose first bytes the reader holds (more bytes are to come)
// when it is one STREAM frame running to the record's end, for a stream that can take all
// of its data: the data is read from the transport straight into where it goes next, which
// is one copy fewer than through the record buffer (the way of a bulk transfer's full
// records). That is the stream's push handler's own buffer when it has room for all of it
// (session.RoomPushHandler: the middle of a large message), or else a receive chunk, which
// goes to the stream as it is. It reports false, having consumed nothing, when the record
// takes the general path; an error is readDirectRest's.
func (c *conn) readDirect(rr *wire.RecordReader, p *wire.Parser, head []byte, more int) (bool, error) {
	f, n, ok := p.ParseStreamHead(head, more)
	if !ok || n < directMin || n > chunkSize {
		return false, nil
	}
	c.mu.Lock()
	s := c.streams[f.StreamID]
	// Only the reader changes what is checked here (offsets, limits, the final size), or
	// makes it fail (a reset or a close, which readDirectRest handles).
	ok = c.closeErr == nil && c.gotParams && s != nil && s.canRecv && s.recvErr == nil && !s.finKnown &&
		f.Offset == s.recvOff && f.Offset+uint64(n) <= s.recvMax && c.recvd+uint64(n) <= c.recvMax
	var room []byte
	if ok && !f.Fin {
		// Only the reader passes data to the handler, and a handler that ended (PushEnded,
		// by a close or CancelRead meanwhile) gets no more: the room stays the reader's
		// until handleStreamLocked.
		if h, isRoom := s.push.(session.RoomPushHandler); isRoom {
			room = h.PushRoom(n)
		}
	}
	c.mu.Unlock()
	if !ok {
		return false, nil
	}
	d := &c.direct
	*d = directRead{f: *f, b: room, placed: room != nil}
	if room == nil {
		d.chunk = chunkPool.Get().(*[]byte)
		d.b = (*d.chunk)[:n]
	}
	d.got = copy(d.b, f.Data)
	return true, c.readDirectRest(rr, false)
}

// readDirectRest reads the rest of c.direct's data from rr (resume: a read cut off before
// it) and hands the frame to its stream. A timeout of a DriveRead caller's read leaves it to
// the next reader; any other error is the transport's.
func (c *conn) readDirectRest(rr *wire.RecordReader, resume bool) error {
	d := &c.direct
	k, err := rr.ReadRestResumable(d.b[d.got:], resume)
	d.got += k
	if err != nil {
		if !wire.IsTimeout(err) {
			c.dropDirect()
		}
		return err
	}
	d.f.Data = d.b
	c.mu.Lock()
	if c.closeErr == nil {
		if d.chunk != nil {
			*d.chunk = d.b
		}
		c.handleStreamLocked(&d.f, d.chunk, d.placed)
		c.activityLocked(false)
		*d = directRead{}
	} else {
		c.dropDirect()
	}
	c.mu.Unlock()
	c.notifyCapacity()
	return nil
}

// dropDirect forgets c.direct, its chunk going back to the pool.
func (c *conn) dropDirect() {
	if d := &c.direct; d.chunk != nil {
		*d.chunk = (*d.chunk)[:0]
		chunkPool.Put(d.chunk)
	}
	c.direct = directRead{}
}

// finishReading runs when reading ended: the writer finishes, then the transport closes.
func (c *conn) finishReading() {
	c.mu.Lock()
	c.signalWriter()
	c.mu.Unlock()
}

func (c *conn) handleFrameLocked(f wire.Frame) {
	if !c.gotParams {
		tp, ok := f.(*wire.TransportParametersFrame)
		if !ok {
			c.protocolErrorLocked(wire.TransportParameterError, f.Type(), "first frame is not QX_TRANSPORT_PARAMETERS")
			return
		}
		c.applyParamsLocked(&tp.Params)
		return
	}
	switch f := f.(type) {
	case *wire.PaddingFrame:
	case *wire.StreamFrame:
		c.handleStreamLocked(f, nil, false)
	case *wire.ResetStreamFrame:
		c.handleResetLocked(f)
	case *wire.StopSendingFrame:
		c.handleStopSendingLocked(f)
	case *wire.MaxDataFrame:
		if f.MaximumData > c.sendMax {
			c.sendMax = f.MaximumData
			for _, s := range c.connBlocked {
				c.queueStream(s)
			}
			c.connBlocked = c.connBlocked[:0]
		}
	case *wire.MaxStreamDataFrame:
		s, ok := c.sendStreamLocked(f.StreamID, f.Type())
		if ok && s != nil && f.MaximumStreamData > s.sendMax {
			s.sendMax = f.MaximumStreamData
			if len(s.pending) > 0 || (s.finQueued && !s.finSent) {
				c.queueStream(s)
			}
		}
	case *wire.MaxStreamsFrame:
		dir := dirUni
		if f.Bidi {
			dir = dirBidi
		}
		c.raiseLimitLocked(dir, f.MaximumStreams)
	case *wire.DataBlockedFrame, *wire.StreamDataBlockedFrame, *wire.StreamsBlockedFrame:
		// Informational: our updates are driven by the application's reads.
	case *wire.ConnectionCloseFrame:
		kind := session.ClosedByTransportError
		if f.IsApplication {
			kind = session.ClosedByApplication
		}
		c.closeLocked(&session.CloseError{Kind: kind, Code: f.ErrorCode, Reason: string(f.Reason), Remote: true}, nil)
	case *wire.TransportParametersFrame:
		c.protocolErrorLocked(wire.TransportParameterError, f.Type(), "QX_TRANSPORT_PARAMETERS repeated")
	case *wire.PingFrame:
		c.handlePingLocked(f)
	default:
		c.protocolErrorLocked(wire.FrameEncodingError, f.Type(), "unexpected frame")
	}
}

func (c *conn) applyParamsLocked(p *wire.TransportParameters) {
	c.peer = *p
	c.gotParams = true
	c.sendMax = p.InitialMaxData
	c.raiseLimitLocked(dirBidi, p.InitialMaxStreamsBidi)
	c.raiseLimitLocked(dirUni, p.InitialMaxStreamsUni)
	// Idle timeout: the smaller of both sides' non-zero values (RFC 9000 §10.1).
	idle := c.local.MaxIdleTimeout
	if p.MaxIdleTimeout > 0 && (idle == 0 || p.MaxIdleTimeout < idle) {
		idle = p.MaxIdleTimeout
	}
	now := time.Now()
	if idle > 0 {
		c.idle = max(idle, minIdleTimeout)
		c.idleFrom = now
		c.idleTimer = time.AfterFunc(c.idle, c.onIdle)
	}
	if ka := c.cfg.KeepAlive(); ka > 0 {
		if c.idle > 0 {
			ka = min(ka, c.idle/2)
		}
		c.keepAlive = ka
		c.keepFrom = now
		c.keepTimer = time.AfterFunc(ka, c.onKeepAlive)
	}
	close(c.params)
	c.signalWriter()
}

func (c *conn) raiseLimitLocked(dir int, limit uint64) {
	if limit <= c.peerLimit[dir] {
		return
	}
	c.peerLimit[dir] = limit
	c.blockedSent[dir] = false
	close(c.openWait)
	c.openWait = make(chan struct{})
	c.capNotify = true
}

// notifyCapacity calls the stream-capacity subscribers, outside the lock, if a limit rose.
func (c *conn) notifyCapacity() {
	c.mu.Lock()
	if !c.capNotify {
		c.mu.Unlock()
		return
	}
	c.capNotify = false
	capacity := c.capacityLocked()
	fs := make([]func(session.Capacity), 0, len(c.subs))
	for _, f := range c.subs {
		fs = append(fs, f)
	}
	c.mu.Unlock()
	for _, f := range fs {
		f(capacity)
	}
}

// activityLocked restarts the idle timer: a record was received, or sent. As in RFC 9000
// §10.1, only the first send after a receipt restarts it: otherwise our own keep-alives
// would keep a connection to a silent (dead) peer open for ever. A receipt also restarts
// the keep-alive timer.
//
// The timers are lazy: this runs for every record, and a Timer.Reset each time would cost
// more than a small record (it can wake an idle thread of the runtime). Only the time is
// recorded; onIdle and onKeepAlive, when their timer fires, re-arm it for what remains.
func (c *conn) activityLocked(sent bool) {
	if c.closeErr != nil {
		return
	}
	if sent {
		if c.sentSinceRecv {
			return
		}
		c.sentSinceRecv = true
	} else {
		c.sentSinceRecv = false
		c.recvSinceSend = true
	}
	if c.idleTimer == nil && c.keepTimer == nil {
		return
	}
	now := time.Now()
	c.idleFrom = now
	if !sent {
		c.keepFrom = now
	}
}

func (c *conn) onIdle() {
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return
	}
	if left := c.idle - time.Since(c.idleFrom); left > 0 {
		c.idleTimer.Reset(left)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.closeWith(&session.CloseError{Kind: session.ClosedByIdleTimeout}, nil)
}

func (c *conn) onKeepAlive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return
	}
	if left := c.keepAlive - time.Since(c.keepFrom); left > 0 {
		c.keepTimer.Reset(left)
		return
	}
	c.pingSent++
	c.pingAt = time.Now()
	c.keepFrom = c.pingAt
	c.ctrl = append(c.ctrl, &wire.PingFrame{Sequence: c.pingSent})
	c.signalWriter()
	c.keepTimer.Reset(c.keepAlive)
}

func (c *conn) handlePingLocked(f *wire.PingFrame) {
	if f.Response {
		if f.Sequence > c.pingSent {
			c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), "QX_PING response to a request never sent")
			return
		}
		if f.Sequence == c.pingSent && f.Sequence > c.pingAcked {
			c.rtt = max(time.Since(c.pingAt), 100*time.Microsecond)
		}
		c.pingAcked = max(c.pingAcked, f.Sequence)
		return
	}
	if c.gotPeerPing && f.Sequence <= c.peerPing {
		c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), "QX_PING request sequence did not increase")
		return
	}
	c.peerPing, c.gotPeerPing = f.Sequence, true
	if !c.pingPending {
		c.pingPending = true
		c.signalWriter()
	}
}

// peerStreamLocked returns the stream a frame from the peer refers to, creating
// peer-initiated streams (and every lower-numbered one of the same type, RFC 9000 §3.2) on
// first use. It returns nil, true for a stream already finished and forgotten, and closes
// the connection (returning false) for an ID the peer may not use.
func (c *conn) streamLocked(id uint64, ft wire.FrameType) (*stream, bool) {
	if s, ok := c.streams[id]; ok {
		return s, true
	}
	dir := streamDir(id)
	idx := streamIndex(id)
	if initiatedByClient(id) == c.client {
		// Ours: it must have been opened.
		if idx >= c.nextLocal[dir] {
			c.protocolErrorLocked(wire.StreamStateError, ft, fmt.Sprintf("stream %d not yet opened", id))
			return nil, false
		}
		return nil, true
	}
	if idx < c.nextRemote[dir] {
		return nil, true
	}
	if idx >= c.limit[dir] {
		c.protocolErrorLocked(wire.StreamLimitError, ft, fmt.Sprintf("stream %d exceeds the stream limit %d", id, c.limit[dir]))
		return nil, false
	}
	var s *stream
	for ; c.nextRemote[dir] <= idx; c.nextRemote[dir]++ {
		s = newStream(c, streamID(c.nextRemote[dir], dir, !c.client), false)
		c.streams[s.id] = s
		c.acceptQ[dir] = append(c.acceptQ[dir], s)
	}
	signal(c.acceptSig[dir])
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

// handleStreamLocked takes a STREAM frame. Its data is copied out of the record buffer,
// unless owned, a receive chunk holding exactly f.Data (readDirect), which the stream then
// keeps as it is; handleStreamLocked always takes owned. placed says that f.Data is the
// room the stream's push handler gave for it (readDirect), written already.
func (c *conn) handleStreamLocked(f *wire.StreamFrame, owned *[]byte, placed bool) {
	if owned != nil {
		defer func() {
			if owned != nil {
				*owned = (*owned)[:0]
				chunkPool.Put(owned)
			}
		}()
	}
	s, ok := c.recvStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil {
		return
	}
	end := f.Offset + uint64(len(f.Data))
	if f.Offset != s.recvOff {
		if s.recvErr != nil && s.finKnown {
			return // reset already; late data is ignored
		}
		c.protocolErrorLocked(wire.ProtocolViolation, f.Type(), fmt.Sprintf("stream %d data at offset %d, expected %d", s.id, f.Offset, s.recvOff))
		return
	}
	if s.finKnown && (end > s.finalSize || (f.Fin && end != s.finalSize)) {
		c.protocolErrorLocked(wire.FinalSizeError, f.Type(), fmt.Sprintf("stream %d data beyond its final size", s.id))
		return
	}
	if end > s.recvMax {
		c.protocolErrorLocked(wire.FlowControlError, f.Type(), fmt.Sprintf("stream %d exceeded its flow-control limit", s.id))
		return
	}
	n := uint64(len(f.Data))
	if c.recvd+n > c.recvMax {
		c.protocolErrorLocked(wire.FlowControlError, f.Type(), "connection flow-control limit exceeded")
		return
	}
	c.recvd += n
	s.recvOff = end
	if f.Fin {
		s.finKnown, s.finalSize = true, end
	}
	if s.recvErr != nil {
		// The application stopped reading: discard, returning the credit.
		s.readOff += n
		c.consumedConn(n)
	} else if placed && s.push != nil {
		if !s.push.(session.RoomPushHandler).PushWritten(len(f.Data), f.Fin) || f.Fin {
			s.push = nil
		}
		s.readOff += n
		c.consumed(s, n)
	} else if s.push != nil {
		c.pushLocked(s, f.Data, &owned)
	} else if n > 0 {
		data := f.Data
		m := 0
		if s.rBuf != nil && len(s.chunks) == 0 {
			m = copy(s.rBuf[s.rGot:], data)
			s.rGot += m
			data = data[m:]
		}
		switch {
		case len(data) == 0:
		case owned != nil:
			// The chunk holds the frame's data, of which the waiting Read took m bytes (and
			// then there were no chunks, so it is the first: head is where reading resumes).
			if m > 0 {
				s.head = m
			}
			s.chunks = append(s.chunks, owned)
			owned = nil
		default:
			s.appendData(data)
		}
	}
	signal(s.rSignal)
	c.streamMaybeDone(s)
}

// appendData copies data out of the record buffer into the stream's chunks.
func (s *stream) appendData(data []byte) {
	for len(data) > 0 {
		if k := len(s.chunks); k > 0 {
			last := s.chunks[k-1]
			if room := cap(*last) - len(*last); room > 0 {
				m := min(room, len(data))
				*last = append(*last, data[:m]...)
				data = data[m:]
				continue
			}
		}
		s.chunks = append(s.chunks, chunkPool.Get().(*[]byte))
	}
}

func (c *conn) handleResetLocked(f *wire.ResetStreamFrame) {
	s, ok := c.recvStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil {
		return
	}
	if (s.finKnown && f.FinalSize != s.finalSize) || f.FinalSize < s.recvOff {
		c.protocolErrorLocked(wire.FinalSizeError, f.Type(), fmt.Sprintf("stream %d reset with final size %d", s.id, f.FinalSize))
		return
	}
	if f.FinalSize > s.recvMax || c.recvd+(f.FinalSize-s.recvOff) > c.recvMax {
		c.protocolErrorLocked(wire.FlowControlError, f.Type(), "reset final size exceeds flow control")
		return
	}
	// Bytes never sent still count against the connection's flow control (RFC 9000 §4.5).
	unsent := f.FinalSize - s.recvOff
	c.recvd += unsent
	s.recvOff = f.FinalSize
	s.finKnown, s.finalSize = true, f.FinalSize
	if s.recvErr == nil {
		s.recvErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(f.ErrorCode), Remote: true}
		s.dropChunks()
		s.endPushLocked(s.recvErr)
	}
	s.readOff += unsent
	c.consumedConn(unsent)
	signal(s.rSignal)
	c.streamMaybeDone(s)
}

func (c *conn) handleStopSendingLocked(f *wire.StopSendingFrame) {
	s, ok := c.sendStreamLocked(f.StreamID, f.Type())
	if !ok || s == nil {
		return
	}
	if s.finSent || s.resetQueued {
		return
	}
	// Answer with RESET_STREAM carrying the same code (RFC 9000 §3.5).
	s.sendErr = &session.StreamResetError{StreamID: int64(s.id), Code: session.StreamErrorCode(f.ErrorCode), Remote: true}
	c.resetLocked(s, f.ErrorCode)
}

// resetLocked abandons the send side with RESET_STREAM. A blocked Write keeps its pending
// data (the writer skips a reset stream) so that it can report how much of it went out.
func (c *conn) resetLocked(s *stream, code uint64) {
	s.resetQueued, s.resetCode = true, code
	s.resetSent = true
	s.releaseSendLocked()
	c.ctrl = append(c.ctrl, &wire.ResetStreamFrame{StreamID: s.id, ErrorCode: code, FinalSize: s.sendOff})
	c.signalWriter()
	signal(s.wSignal)
	c.streamMaybeDone(s)
}

// consumed records that the application read n bytes of s, and grants more credit when
// half the window is used, growing the window when updates come faster than every few RTTs.
func (c *conn) consumed(s *stream, n uint64) {
	c.consumedConn(n)
	if s.finKnown || s.recvErr != nil {
		return
	}
	if s.recvMax-s.readOff > s.window/2 {
		return
	}
	now := time.Now()
	if !s.lastUpdate.IsZero() && now.Sub(s.lastUpdate) < 4*c.rtt {
		s.window = min(2*s.window, max(c.cfg.StreamWindow(), s.window))
	}
	s.lastUpdate = now
	s.recvMax = s.readOff + s.window
	c.ctrl = append(c.ctrl, &wire.MaxStreamDataFrame{StreamID: s.id, MaximumStreamData: s.recvMax})
	c.signalWriter()
}

func (c *conn) consumedConn(n uint64) {
	if n == 0 {
		return
	}
	c.readTotal += n
	if c.recvMax-c.readTotal > c.connWindow/2 || c.closeErr != nil {
		return
	}
	now := time.Now()
	if !c.lastConnUpdate.IsZero() && now.Sub(c.lastConnUpdate) < 4*c.rtt {
		c.connWindow = min(2*c.connWindow, max(c.cfg.ConnectionWindow(), c.connWindow))
	}
	c.lastConnUpdate = now
	c.recvMax = c.readTotal + c.connWindow
	c.ctrl = append(c.ctrl, &wire.MaxDataFrame{MaximumData: c.recvMax})
	c.signalWriter()
}

// streamMaybeDone forgets a stream whose both sides are finished; a finished peer-initiated
// stream lets the peer open another (MAX_STREAMS).
func (c *conn) streamMaybeDone(s *stream) {
	if s.done || !s.sendDone() || !s.recvDone() {
		return
	}
	local := initiatedByClient(s.id) == c.client
	if !local && !s.accepted {
		return // still in the accept queue
	}
	s.done = true
	delete(c.streams, s.id)
	if !local && c.closeErr == nil {
		dir := streamDir(s.id)
		c.limit[dir]++
		c.ctrl = append(c.ctrl, &wire.MaxStreamsFrame{Bidi: dir == dirBidi, MaximumStreams: c.limit[dir]})
		c.signalWriter()
	}
}

// --- writing ------------------------------------------------------------------------------

func (c *conn) signalWriter() { signal(c.wake) }

// queueStream puts s in the send queue and wakes the writer.
func (c *conn) queueStream(s *stream) {
	c.enqueueLocked(s)
	c.signalWriter()
}

// enqueueLocked puts s in the send queue.
func (c *conn) enqueueLocked(s *stream) {
	if !s.queued {
		s.queued = true
		c.sendQ = append(c.sendQ, s)
	}
}

// inlineLocked reports whether a small Write that just queued s should write the records
// itself (writeInlineLocked) rather than wake the writer goroutine: the writer is idle,
// s is all that is queued, and we received since we last sent. That last condition keeps
// the writer for a stream of messages: a sender writing back to back would otherwise make
// a transport write per message, while the writer, busy with one write, packs the messages
// queued meanwhile into the next. A message that answers one received (request/response)
// is the case that waits for the hand-off to the writer.
func (c *conn) inlineLocked() bool {
	return c.sock != nil && !c.writing && c.closeErr == nil && c.gotParams && c.paramsSent &&
		c.recvSinceSend && len(c.sendQ) == 1
}

// writeInlineLocked writes, on the caller's goroutine, what the writer goroutine would write
// next (one fillLocked), without ever blocking: the socket takes what it can at once and
// the writer goroutine gets the rest (sockConn). Called with c.mu held and inlineLocked
// true; returns with c.mu released. A transport error ends the connection as the writer's
// would; the Write whose data this carries has succeeded all the same, as a buffered Write
// does when the writer fails after it returned.
func (c *conn) writeInlineLocked() {
	c.writing = true
	pb := writeBuffers.Get().(*[]byte)
	buf := c.fillLocked((*pb)[:0])
	c.mu.Unlock()
	var err error
	backlog := false
	if len(buf) > 0 {
		c.sock.beginTry()
		_, err = c.nc.Write(buf)
		backlog = c.sock.endTry()
	}
	*pb = buf[:0]
	writeBuffers.Put(pb)
	c.mu.Lock()
	c.writing = false
	c.inlineWrites++
	if backlog {
		c.inlineHandoffs++
	}
	if err != nil {
		c.transportFailedLocked(err)
	} else if len(buf) > 0 {
		c.activityLocked(true)
	}
	// Whatever came meanwhile (a close, other Writes, control frames), or is left (the
	// backlog), is the writer's: its wake-ups during this write found the role taken.
	if c.writerHasWorkLocked() {
		c.signalWriter()
	}
	c.mu.Unlock()
}

// writerHasWorkLocked reports whether the writer goroutine has anything to do: records to
// write, a backlog to flush, or a close to finish.
func (c *conn) writerHasWorkLocked() bool {
	return len(c.sendQ) > 0 || len(c.ctrl) > 0 || c.pingPending || !c.paramsSent || c.closeErr != nil ||
		c.sock != nil && c.sock.hasBacklog()
}

// writeBuffers recycles the writer's record buffers between bursts, so that an idle
// connection holds none.
var writeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, recordsPerWrite*(recordPayload+2))
	return &b
}}

func (c *conn) writeLoop() {
	defer c.goroutineDone()
	for {
		<-c.wake
		if !c.writeBurst() {
			return
		}
	}
}

// writeBurst writes until nothing is left to send (the backlog of an inline write
// included), with a pooled buffer, holding the writing role throughout. It reports false
// once the connection is finished. While a Write's caller holds the role it does nothing:
// that caller wakes the writer again if it leaves anything. Nor does it take the role for
// a wake-up whose work an inline write did already, which would keep the next one from
// writing inline.
func (c *conn) writeBurst() bool {
	c.mu.Lock()
	if c.writing || !c.writerHasWorkLocked() {
		c.mu.Unlock()
		return true
	}
	c.writing = true
	c.mu.Unlock()
	pb := writeBuffers.Get().(*[]byte)
	defer writeBuffers.Put(pb)
	for {
		c.mu.Lock()
		buf := c.fillLocked((*pb)[:0])
		*pb = buf[:0]
		closing := c.closeErr != nil
		backlog := c.sock != nil && c.sock.hasBacklog()
		if len(buf) == 0 && !closing && !backlog {
			c.writing = false
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		var err error
		switch {
		case len(buf) > 0:
			_, err = c.nc.Write(buf) // after the backlog, which the socket writes first
		case backlog:
			err = c.sock.flush()
		}
		if err != nil {
			c.transportFailed(err)
			c.shutdown()
			return false
		}
		if len(buf) > 0 && !closing {
			c.mu.Lock()
			c.activityLocked(true)
			c.mu.Unlock()
		}
		if closing {
			c.shutdown()
			return false
		}
	}
}

// shutdown half-closes the transport after the last frames (TLS close_notify and TCP FIN),
// waits (bounded) for the reader to see the peer's half-close, then closes the transport.
// Closing at once could make TCP reset the connection and lose our CONNECTION_CLOSE.
func (c *conn) shutdown() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // TLS: close_notify
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		if cw, ok := tc.NetConn().(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // TCP FIN: the half-close the draft's close procedure asks for
		}
	}
	c.mu.Lock()
	c.linger = time.Now().Add(closeLinger)
	_ = c.nc.SetReadDeadline(c.linger)
	c.mu.Unlock()
	<-c.readDone
	_ = c.nc.Close()
}

// fillLocked appends up to recordsPerWrite records of pending frames to buf.
func (c *conn) fillLocked(buf []byte) []byte {
	n := len(buf)
	buf = c.fillRecordsLocked(buf)
	if len(buf) > n {
		c.recvSinceSend = false
	}
	return buf
}

func (c *conn) fillRecordsLocked(buf []byte) []byte {
	if c.closeErr != nil && c.closeSent {
		return buf
	}
	for range recordsPerWrite {
		var start int
		buf, start = wire.BeginRecord(buf, 2)
		room := func() int { return wire.RecordRoom(buf, start, recordPayload) }
		if !c.paramsSent {
			buf = (&wire.TransportParametersFrame{Params: c.local}).Append(buf)
			c.paramsSent = true
			// Sent at 0.5-RTT already (halfrtt.go): R0 carried this record alone, and the TLS
			// layer must get it the same way, to recognise and drop it: in a write of its
			// own, or, when closing, followed by the CONNECTION_CLOSE's record.
			if halfRTT(c.client, c.cfg) {
				buf = wire.EndRecord(buf, start)
				if c.closeErr == nil {
					return buf
				}
				buf, start = wire.BeginRecord(buf, 2)
			}
		}
		if c.pingPending && c.closeErr == nil && room() >= 17 {
			buf = (&wire.PingFrame{Response: true, Sequence: c.peerPing}).Append(buf)
			c.pingPending = false
		}
		for len(c.ctrl) > 0 && c.ctrl[0].Length() <= room() {
			buf = c.ctrl[0].Append(buf)
			c.ctrl[0] = nil
			c.ctrl = c.ctrl[1:]
		}
		if c.closeErr != nil {
			c.closeSent = true
			return wire.EndRecord(buf, start)
		}
		if c.gotParams {
			buf = c.fillStreamsLocked(buf, start)
		}
		before := len(buf)
		buf = wire.EndRecord(buf, start)
		if len(buf) < before || len(c.sendQ) == 0 && len(c.ctrl) == 0 {
			break
		}
	}
	return buf
}

// fillStreamsLocked appends STREAM frames to the record that started at start, serving the
// send queue round robin.
func (c *conn) fillStreamsLocked(buf []byte, start int) []byte {
	for len(c.sendQ) > 0 {
		room := wire.RecordRoom(buf, start, recordPayload)
		if room < 32 {
			return buf
		}
		s := c.sendQ[0]
		f := wire.StreamFrame{StreamID: s.id, Offset: s.sendOff, HasLength: true}
		avail := uint64(len(s.pending))
		n := min(avail, s.sendMax-s.sendOff, c.sendMax-c.sent, streamQuantum)
		n = min(n, uint64(f.MaxDataLen(room)))
		fin := s.finQueued && !s.finSent && n == avail && !s.resetQueued
		if s.resetQueued || (n == 0 && !fin) {
			c.dequeueLocked()
			if !s.resetQueued && avail > 0 {
				c.blockedLocked(s)
			}
			continue
		}
		f.Data = s.pending[:n]
		f.Fin = fin
		buf = f.Append(buf)
		s.pending = s.pending[n:]
		s.sendOff += n
		c.sent += n
		// A small Write waiting for room wakes as soon as some is free; a large Write
		// (external) waits for its last byte only: waking it per burst would cost a
		// context switch per 128 KiB for nothing.
		if len(s.pending) == 0 || s.wWaiting && !s.external {
			signal(s.wSignal)
		}
		if fin {
			s.finSent = true
			s.releaseSendLocked()
			c.streamMaybeDone(s)
		}
		c.dequeueLocked()
		if len(s.pending) > 0 {
			c.queueStream(s) // back of the queue: the next stream's turn
		}
	}
	return buf
}

func (c *conn) dequeueLocked() {
	c.sendQ[0].queued = false
	// Shift rather than reslice, so that the queue keeps its array (reslicing from the front
	// leaves no capacity once it empties, and the next append allocates).
	n := copy(c.sendQ, c.sendQ[1:])
	c.sendQ[n] = nil
	c.sendQ = c.sendQ[:n]
}

// blockedLocked signals that s cannot send: STREAM_DATA_BLOCKED or DATA_BLOCKED, once per
// limit; the stream is queued again when the limit rises.
func (c *conn) blockedLocked(s *stream) {
	if s.sendOff >= s.sendMax {
		if s.blockedAt != s.sendMax || s.sendMax == 0 && s.blockedAt == 0 {
			s.blockedAt = s.sendMax
			c.ctrl = append(c.ctrl, &wire.StreamDataBlockedFrame{StreamID: s.id, MaximumStreamData: s.sendMax})
		}
		return
	}
	if c.sent >= c.sendMax {
		if c.dataBlockedAt != c.sendMax {
			c.dataBlockedAt = c.sendMax
			c.ctrl = append(c.ctrl, &wire.DataBlockedFrame{MaximumData: c.sendMax})
		}
		c.connBlocked = append(c.connBlocked, s)
	}
}
