package qmux

// The protocol tests are scripted conversations (in the manner of golang.org/x/net/quic's
// tests): a conn under test runs on one end of a net.Pipe, and the test plays the peer on the
// other end, writing records built with the wire codec and reading back the records the conn
// sends. Most run inside a testing/synctest bubble, so timers run on a fake clock,
// synctest.Wait tells when the conn has nothing left to do, and a missing frame fails the
// test at once (fake time jumps to the timeout) instead of hanging it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every wait for the conn under test. Inside a synctest bubble it is fake
// time: it expires only once the conn is stuck.
const waitTimeout = 10 * time.Second

// testConfig returns a config with the fields newConn reads: no idle timeout and no
// keep-alives (so a script sees only the frames it provokes), 10 incoming streams of each
// kind, and the default windows.
func testConfig() *session.Config {
	return &session.Config{
		IdleTimeout:           -1,
		KeepAlivePeriod:       -1,
		MaxIncomingStreams:    10,
		MaxIncomingUniStreams: 10,
	}
}

// peerParams are the scripted peer's transport parameters unless a test says otherwise:
// generous limits, no idle timeout.
func peerParams() wire.TransportParameters {
	return wire.TransportParameters{
		InitialMaxData:                 4 << 20,
		InitialMaxStreamDataBidiLocal:  1 << 20,
		InitialMaxStreamDataBidiRemote: 1 << 20,
		InitialMaxStreamDataUni:        1 << 20,
		InitialMaxStreamsBidi:          10,
		InitialMaxStreamsUni:           10,
	}
}

// record is one record the conn sent.
type record struct {
	size   int          // the Size field: frame bytes
	frames []wire.Frame // deep copies
}

// peer is the scripted far end of a conn under test.
type peer struct {
	t      testing.TB
	c      *conn
	nc     net.Conn // the peer's end of the pipe
	client bool     // the conn's role; the peer plays the other one

	mu      sync.Mutex
	recs    []record
	frames  []wire.Frame
	next    int   // next frame nextFrame returns
	readErr error // why reading the conn's byte stream ended: io.EOF when it closed its end
	notify  chan struct{}
	done    chan struct{} // the reading goroutine ended

	closeOnce sync.Once
}

// startConn starts a conn in the given role on one end of a net.Pipe and returns it with the
// other end. The conn's byte stream is not read: the test reads it raw.
func startConn(t testing.TB, cfg *session.Config, client bool) (*conn, net.Conn) {
	t.Helper()
	ours, theirs := net.Pipe()
	c := newConn(ours, client, cfg, session.State{})
	t.Cleanup(func() {
		_ = theirs.Close()
		_ = c.CloseWithError(0, "")
		<-c.life.ended
	})
	return c, theirs
}

// newPeer starts a conn (as a server: the peer plays the client, unless client is set) and a
// goroutine that reads and parses everything the conn sends.
func newPeer(t testing.TB, cfg *session.Config, client bool) *peer {
	t.Helper()
	ours, theirs := net.Pipe()
	return newPeerOn(t, cfg, client, ours, theirs)
}

// newPeerOn is newPeer over a byte stream of the test's: the conn runs on ours, the peer
// on theirs.
func newPeerOn(t testing.TB, cfg *session.Config, client bool, ours, theirs net.Conn) *peer {
	t.Helper()
	p := &peer{
		t:      t,
		c:      newConn(ours, client, cfg, session.State{}),
		nc:     theirs,
		client: client,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go p.readLoop()
	t.Cleanup(p.close)
	return p
}

// close ends the conversation: the peer closes its end, the conn shuts down, and every
// goroutine of both ends finishes.
func (p *peer) close() {
	p.closeOnce.Do(func() {
		_ = p.nc.Close()
		_ = p.c.CloseWithError(0, "")
		<-p.c.life.ended
		<-p.done
	})
}

func (p *peer) readLoop() {
	defer close(p.done)
	rr := wire.NewRecordReader(p.nc, wire.MaxSupportedRecordSize)
	var parser wire.Parser
	for {
		payload, err := rr.Next()
		if err != nil {
			p.finish(err)
			return
		}
		rec := record{size: len(payload)}
		for len(payload) > 0 {
			f, n, err := parser.ParseNext(payload)
			if err != nil {
				p.finish(fmt.Errorf("the conn sent a malformed record: %w", err))
				return
			}
			rec.frames = append(rec.frames, cloneFrame(f))
			payload = payload[n:]
		}
		p.mu.Lock()
		p.recs = append(p.recs, rec)
		p.frames = append(p.frames, rec.frames...)
		p.mu.Unlock()
		signal(p.notify)
	}
}

func (p *peer) finish(err error) {
	p.mu.Lock()
	p.readErr = err
	p.mu.Unlock()
	signal(p.notify)
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
		// Keep the conn's writer from blocking on a peer that stopped reading.
		_, _ = io.Copy(io.Discard, p.nc)
	}
}

// id is the ID of the index-th stream of direction dir that the peer opens.
func (p *peer) id(index uint64, dir int) uint64 { return streamID(index, dir, !p.client) }

// ourID is the ID of the index-th stream of direction dir that the conn opens.
func (p *peer) ourID(index uint64, dir int) uint64 { return streamID(index, dir, p.client) }

// write writes raw bytes to the conn.
func (p *peer) write(b []byte) {
	p.t.Helper()
	_ = p.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, err := p.nc.Write(b)
	require.NoError(p.t, err, "writing to the conn")
}

// sendPayload writes one record carrying payload.
func (p *peer) sendPayload(payload []byte) {
	p.t.Helper()
	p.write(append(wire.AppendRecordHeader(nil, uint64(len(payload))), payload...))
}

// send writes one record carrying frames.
func (p *peer) send(frames ...wire.Frame) {
	p.t.Helper()
	p.sendPayload(appendFrames(nil, frames...))
}

func appendFrames(b []byte, frames ...wire.Frame) []byte {
	for _, f := range frames {
		b = f.Append(b)
	}
	return b
}

// sendParams writes the peer's first record: its transport parameters.
func (p *peer) sendParams(tp wire.TransportParameters) {
	p.t.Helper()
	p.send(&wire.TransportParametersFrame{Params: tp})
}

// handshake exchanges transport parameters: the peer sends tp and reads the conn's.
func (p *peer) handshake(tp wire.TransportParameters) wire.TransportParameters {
	p.t.Helper()
	p.sendParams(tp)
	f, ok := p.nextFrame().(*wire.TransportParametersFrame)
	require.True(p.t, ok, "the conn's first frame is not QX_TRANSPORT_PARAMETERS")
	return f.Params
}

// sendStream writes data on a stream from offset off, split into as many records as needed.
func (p *peer) sendStream(id, off uint64, data []byte, fin bool) {
	p.t.Helper()
	const chunk = 16 << 10 // leaves room for the frame header in a 16382-byte record
	for {
		n := min(len(data), chunk-64)
		last := n == len(data)
		p.send(&wire.StreamFrame{StreamID: id, Offset: off, Data: data[:n], Fin: fin && last, HasLength: true})
		off += uint64(n)
		data = data[n:]
		if last {
			return
		}
	}
}

// nextFrame returns the next frame the conn sent, waiting for it.
func (p *peer) nextFrame() wire.Frame {
	p.t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		if p.next < len(p.frames) {
			f := p.frames[p.next]
			p.next++
			p.mu.Unlock()
			return f
		}
		err := p.readErr
		p.mu.Unlock()
		if err != nil {
			p.t.Fatalf("waiting for a frame: the conn's byte stream ended: %v", err)
		}
		select {
		case <-p.notify:
		case <-timeout.C:
			p.t.Fatalf("no frame from the conn within %v", waitTimeout)
		}
	}
}

// expectFrame returns the next frame of type T that match accepts (nil accepts any),
// skipping other frames.
func expectFrame[T wire.Frame](p *peer, match func(T) bool) T {
	p.t.Helper()
	for {
		if f, ok := p.nextFrame().(T); ok && (match == nil || match(f)) {
			return f
		}
	}
}

// sent returns every frame the conn sent so far of type T; call it after synctest.Wait.
func sent[T wire.Frame](p *peer) []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []T
	for _, f := range p.frames {
		if f, ok := f.(T); ok {
			out = append(out, f)
		}
	}
	return out
}

// records returns the records the conn sent so far.
func (p *peer) records() []record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]record(nil), p.recs...)
}

// streamData returns the data the conn sent on stream id so far, checking that it came in
// order, and whether the FIN arrived.
func (p *peer) streamData(id uint64) (data []byte, fin bool) {
	p.t.Helper()
	for _, f := range sent[*wire.StreamFrame](p) {
		if f.StreamID != id {
			continue
		}
		require.Equal(p.t, uint64(len(data)), f.Offset, "stream %d data out of order", id)
		require.False(p.t, fin, "stream %d data after FIN", id)
		data = append(data, f.Data...)
		fin = f.Fin
	}
	return data, fin
}

// expectEOF waits until the conn closed its end of the pipe, and fails if it sent anything
// the test did not consume.
func (p *peer) expectEOF() {
	p.t.Helper()
	p.waitEOF()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.ErrorIs(p.t, p.readErr, io.EOF)
	require.Empty(p.t, p.frames[p.next:], "frames after the end")
}

// waitEOF waits until the conn closed its end of the pipe.
func (p *peer) waitEOF() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.t.Fatal("the conn did not close its end")
	}
}

// closeErr waits for the conn to close and returns why.
func (p *peer) closeErr() *session.CloseError {
	p.t.Helper()
	select {
	case <-p.c.Context().Done():
	case <-time.After(waitTimeout):
		p.t.Fatal("the conn did not close")
	}
	ce, ok := errors.AsType[*session.CloseError](context.Cause(p.c.Context()))
	require.True(p.t, ok, "close cause %v is not a *session.CloseError", context.Cause(p.c.Context()))
	return ce
}

// expectTransportClose checks that the conn closed the connection because of the peer's
// protocol violation: it sends CONNECTION_CLOSE of type 0x1c with code (and nothing after
// it), and reports a local *session.CloseError with that code.
func (p *peer) expectTransportClose(code wire.TransportErrorCode) *wire.ConnectionCloseFrame {
	p.t.Helper()
	cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
	require.False(p.t, cc.IsApplication, "CONNECTION_CLOSE type 0x1d, want 0x1c")
	require.Equal(p.t, wire.FrameTypeConnectionClose, cc.Type())
	require.Equal(p.t, code, wire.TransportErrorCode(cc.ErrorCode), "CONNECTION_CLOSE code (reason %q)", cc.Reason)
	ce := p.closeErr()
	require.Equal(p.t, session.ClosedByTransportError, ce.Kind)
	require.Equal(p.t, uint64(code), ce.Code)
	require.False(p.t, ce.Remote)
	require.ErrorIs(p.t, ce, net.ErrClosed)
	p.expectEOF()
	return cc
}

// readAll reads r to its end within the wait timeout.
func readAll(t testing.TB, r session.ReceiveStream) ([]byte, error) {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(waitTimeout))
	return io.ReadAll(r)
}

// accept accepts the peer's next bidirectional stream within the wait timeout.
func accept(t testing.TB, c *conn) session.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.AcceptStream(ctx)
	require.NoError(t, err)
	return s
}

// acceptUni accepts the peer's next unidirectional stream within the wait timeout.
func acceptUni(t testing.TB, c *conn) session.ReceiveStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.AcceptUniStream(ctx)
	require.NoError(t, err)
	return s
}

// open opens a bidirectional stream within the wait timeout.
func open(t testing.TB, c *conn) session.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.OpenStream(ctx)
	require.NoError(t, err)
	return s
}

// pattern returns n bytes that differ from one offset to the next.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + byte(i>>8) + seed
	}
	return b
}

// cloneFrame deep-copies a frame returned by a wire.Parser, whose value and byte slices are
// only valid until its next call.
func cloneFrame(f wire.Frame) wire.Frame {
	cp := func(b []byte) []byte { return append([]byte{}, b...) }
	switch f := f.(type) {
	case *wire.PaddingFrame:
		c := *f
		return &c
	case *wire.ResetStreamFrame:
		c := *f
		return &c
	case *wire.StopSendingFrame:
		c := *f
		return &c
	case *wire.StreamFrame:
		c := *f
		c.Data = cp(f.Data)
		return &c
	case *wire.MaxDataFrame:
		c := *f
		return &c
	case *wire.MaxStreamDataFrame:
		c := *f
		return &c
	case *wire.MaxStreamsFrame:
		c := *f
		return &c
	case *wire.DataBlockedFrame:
		c := *f
		return &c
	case *wire.StreamDataBlockedFrame:
		c := *f
		return &c
	case *wire.StreamsBlockedFrame:
		c := *f
		return &c
	case *wire.ConnectionCloseFrame:
		c := *f
		c.Reason = cp(f.Reason)
		return &c
	case *wire.TransportParametersFrame:
		c := *f
		return &c
	case *wire.PingFrame:
		c := *f
		return &c
	}
	panic(fmt.Sprintf("unexpected frame %T", f))
}

// credential makes a fresh identity and certificate.
func credential(t testing.TB) *certs.Credential {
	t.Helper()
	k, err := identity.GenerateKey()
	require.NoError(t, err)
	c, err := certs.NewCredential(k, certs.Options{})
	require.NoError(t, err)
	return c
}

// tlsConfigs returns a client and a server config that trust each other by certificate hash,
// with the ALPN "test". (internal/sessiontest has the same, but importing it here would be
// an import cycle.)
func tlsConfigs(t testing.TB) (client, server *session.Config) {
	cc, sc := credential(t), credential(t)
	client = &session.Config{Credential: cc, Trust: &certs.TrustPolicy{Hashes: []identity.CertHash{sc.Hash()}}, ALPN: []string{"test"}}
	server = &session.Config{Credential: sc, Trust: &certs.TrustPolicy{Hashes: []identity.CertHash{cc.Hash()}}, ALPN: []string{"test"}}
	return client, server
}
