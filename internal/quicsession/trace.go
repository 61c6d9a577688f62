package quicsession

import (
	"sync"

	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/internal/session"
)

// handshake is what one connection's handshake established beyond quic-go's own state: the
// outcome of our certificate verification, recorded by tls.Config.VerifyConnection.
type handshake struct {
	mu        sync.Mutex
	peer      *certs.PeerCertificate // set when our verification accepted the peer
	rejectErr error                  // set when it refused the peer
}

func (h *handshake) setVerified(p *certs.PeerCertificate, err error) {
	h.mu.Lock()
	h.peer, h.rejectErr = p, err
	h.mu.Unlock()
}

func (h *handshake) verified() (*certs.PeerCertificate, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peer, h.rejectErr
}

// capacityTrace learns the peer's stream limits (initial transport parameters and
// MAX_STREAMS frames) from quic-go's typed qlog events, for a connection made with
// Config.TrackStreamCapacity. quic-go v0.64.1 shows the limits nowhere else: OpenUniStream
// fails with StreamLimitReachedError at the limit (after opening a stream when below it, so
// it cannot probe), and a blocked OpenUniStreamSync wakes when the limit rises by at least
// one; neither tells how many streams the peer allows.
//
// The price: once a tracer is installed, quic-go builds an event for every packet sent and
// received, for the connection's life (it cannot be detached): about 5,500 allocations per
// MiB sent and, on loopback, about 10-17% of bulk throughput and a few microseconds per round
// trip (docs/BENCHMARKS.md). That is why it is opt-in.
type capacityTrace struct {
	mu       sync.Mutex
	maxBidi  int64 // cumulative stream limits granted by the peer
	maxUni   int64
	openBidi int64 // streams we opened
	openUni  int64
	subs     map[int]func(session.Capacity)
	nextSub  int
}

var (
	_ qlogwriter.Trace    = (*capacityTrace)(nil)
	_ qlogwriter.Recorder = (*capacityTrace)(nil)
)

// AddProducer implements qlogwriter.Trace: the trace records its own events.
func (t *capacityTrace) AddProducer() qlogwriter.Recorder { return t }

// SupportsSchemas implements qlogwriter.Trace. We write no qlog files, so higher layers
// (HTTP/3) must not add their events.
func (t *capacityTrace) SupportsSchemas(string) bool { return false }

// Close implements qlogwriter.Recorder.
func (t *capacityTrace) Close() error { return nil }

// RecordEvent implements qlogwriter.Recorder. It runs on quic-go's connection goroutine for
// every event, so it does no more than a type switch unless an event matters to us.
func (t *capacityTrace) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.PacketReceived:
		for _, f := range e.Frames {
			if fr, ok := f.Frame.(*qlog.MaxStreamsFrame); ok {
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

// raise records a new cumulative limit and notifies subscribers when it grew.
func (t *capacityTrace) raise(bidi bool, limit int64) {
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

func (t *capacityTrace) opened(bidi bool) {
	t.mu.Lock()
	if bidi {
		t.openBidi++
	} else {
		t.openUni++
	}
	t.mu.Unlock()
}

func (t *capacityTrace) capacity() session.Capacity {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.capacityLocked()
}

func (t *capacityTrace) capacityLocked() session.Capacity {
	return session.Capacity{Bidi: max(t.maxBidi-t.openBidi, 0), Uni: max(t.maxUni-t.openUni, 0)}
}

func (t *capacityTrace) subscribe(f func(session.Capacity)) func() {
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
