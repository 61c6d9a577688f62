package quicsession

import (
	"sync"

	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/session"
)

// connTrace is one connection's observer. quic-go does not expose two moments the session
// interface needs, so we read them from its typed qlog events:
//
//   - "handshake confirmed" on the client, the HANDSHAKE_DONE frame: in TLS 1.3 the client's
//     handshake completes before the server has checked the client certificate, and only this
//     frame proves the server accepted it;
//   - the peer's stream limits (initial transport parameters and MAX_STREAMS frames), which
//     feed the stream-capacity notifications.
//
// It also records the outcome of our certificate verification for this connection.
//
// quic-go v0.64.1 offers nothing cheaper for either. Conn.HandshakeComplete fires on the
// client when TLS completes, before the server's verdict (quic-go issue #5292 asks for a
// HandshakeConfirmed). Of the stream limits it shows only the edge: OpenUniStream fails with
// StreamLimitReachedError at the limit (after opening a stream when below it, so it cannot
// probe), and a blocked OpenUniStreamSync wakes when the limit rises by at least one. Neither
// tells how many streams the peer allows, and the session promises exact counts: the stream
// pool compares the capacity with its value at the start to learn that the peer has read
// every stream it finished (a QUIC receiver grants a stream per stream consumed). Keeping
// streams pre-opened to count them would cost about 700 bytes each, for up to the peer's
// limit (1024 by default) per connection.
//
// The price of the trace: quic-go builds an event for every packet sent and received once a
// trace is installed, about 5,500 allocations per MiB sent (process-wide, both ends) and a
// few microseconds per round trip on loopback; BenchmarkMessage and BenchmarkRTT show it
// beside raw quic-go. A quic-go API for handshake confirmation and the peer's stream limits
// would let this type go.
type connTrace struct {
	confirmOnce sync.Once
	confirmed   chan struct{}

	mu       sync.Mutex
	maxBidi  int64 // cumulative stream limits granted by the peer
	maxUni   int64
	openBidi int64 // streams we opened
	openUni  int64
	subs     map[int]func(session.Capacity)
	nextSub  int

	peer      *certs.PeerCertificate // set when our verification accepted the peer
	rejectErr error                  // set when it refused the peer
}

func newConnTrace() *connTrace {
	return &connTrace{confirmed: make(chan struct{})}
}

var (
	_ qlogwriter.Trace    = (*connTrace)(nil)
	_ qlogwriter.Recorder = (*connTrace)(nil)
)

// AddProducer implements qlogwriter.Trace: the trace records its own events.
func (t *connTrace) AddProducer() qlogwriter.Recorder { return t }

// SupportsSchemas implements qlogwriter.Trace. We write no qlog files, so higher layers
// (HTTP/3) must not add their events.
func (t *connTrace) SupportsSchemas(string) bool { return false }

// Close implements qlogwriter.Recorder.
func (t *connTrace) Close() error { return nil }

// RecordEvent implements qlogwriter.Recorder. It runs on quic-go's connection goroutine for
// every event, so it does no more than a type switch unless an event matters to us.
func (t *connTrace) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.PacketReceived:
		for _, f := range e.Frames {
			switch fr := f.Frame.(type) {
			case *qlog.HandshakeDoneFrame:
				t.confirm()
			case *qlog.MaxStreamsFrame:
				// quic-go's StreamType: 0 is unidirectional, 1 bidirectional (protocol.StreamTypeUni/Bidi).
				t.raise(fr.Type != 0, int64(fr.MaxStreamNum))
			}
		}
	case qlog.ParametersSet:
		if e.Initiator == qlog.InitiatorRemote && !e.Restore {
			t.raise(true, e.InitialMaxStreamsBidi)
			t.raise(false, e.InitialMaxStreamsUni)
		}
	}
}

func (t *connTrace) confirm() {
	t.confirmOnce.Do(func() { close(t.confirmed) })
}

// raise records a new cumulative limit and notifies subscribers when it grew.
func (t *connTrace) raise(bidi bool, limit int64) {
	t.mu.Lock()
	p := &t.maxUni
	if bidi {
		p = &t.maxBidi
	}
	if limit <= *p {
		t.mu.Unlock()
		return
	}
	*p = limit
	c := t.capacityLocked()
	fs := make([]func(session.Capacity), 0, len(t.subs))
	for _, f := range t.subs {
		fs = append(fs, f)
	}
	t.mu.Unlock()
	for _, f := range fs {
		f(c)
	}
}

func (t *connTrace) opened(bidi bool) {
	t.mu.Lock()
	if bidi {
		t.openBidi++
	} else {
		t.openUni++
	}
	t.mu.Unlock()
}

func (t *connTrace) capacity() session.Capacity {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.capacityLocked()
}

func (t *connTrace) capacityLocked() session.Capacity {
	return session.Capacity{Bidi: max(t.maxBidi-t.openBidi, 0), Uni: max(t.maxUni-t.openUni, 0)}
}

func (t *connTrace) subscribe(f func(session.Capacity)) func() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.subs == nil {
		t.subs = make(map[int]func(session.Capacity))
	}
	id := t.nextSub
	t.nextSub++
	t.subs[id] = f
	return func() {
		t.mu.Lock()
		delete(t.subs, id)
		t.mu.Unlock()
	}
}

func (t *connTrace) setVerified(p *certs.PeerCertificate, err error) {
	t.mu.Lock()
	t.peer, t.rejectErr = p, err
	t.mu.Unlock()
}

func (t *connTrace) verified() (*certs.PeerCertificate, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peer, t.rejectErr
}
