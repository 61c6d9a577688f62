package qmux

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// sockConn is the byte stream (the TCP connection) under a conn's tls.Conn, below
// halfRTTConn when there is one. It lets a goroutine that is not the conn's writer, a
// stream Write's caller, write records (writeInlineLocked) without ever waiting for a full
// socket: between beginTry and endTry, a Write makes one write attempt that does not block
// and keeps whatever the socket did not take in a backlog. The bytes are sealed TLS
// records already, so they cannot be taken back; the backlog goes out before any other
// byte, from the next blocking Write or from flush, which the conn's writer goroutine calls.
//
// A write deadline cannot do this instead: tls.Conn treats a write that timed out as a
// permanent failure of the connection.
type sockConn struct {
	net.Conn
	// attempt writes what the socket takes at once of p, and reports 0 and no error when it
	// is full; nil when the connection cannot do that (then the conn never writes inline).
	attempt func(p []byte) (int, error)

	mu      sync.Mutex
	trying  bool   // between beginTry and endTry: Write must not block
	backlog []byte // sealed bytes the socket did not take yet; they go before any others
	// pending tells, without mu, that the backlog is not empty: the conn reads it under its
	// own mutex, which must not wait for a blocking write holding mu.
	pending atomic.Bool
}

// newSockConn wraps a connection to the peer; its writes attempt without blocking only
// where the platform lets them (nonBlockingWriter).
func newSockConn(nc net.Conn) *sockConn {
	return &sockConn{Conn: nc, attempt: nonBlockingWriter(nc)}
}

// sockOf returns the sockConn under a conn's transport (a tls.Conn over it, over
// halfRTTConn over it, or the sockConn itself), or nil when there is none that can attempt
// writes without blocking.
func sockOf(nc net.Conn) *sockConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if h, ok := nc.(*halfRTTConn); ok {
		nc = h.Conn
	}
	if s, ok := nc.(*sockConn); ok && s.attempt != nil {
		return s
	}
	return nil
}

// beginTry makes writes attempt without blocking, until endTry.
func (s *sockConn) beginTry() {
	s.mu.Lock()
	s.trying = true
	s.mu.Unlock()
}

// endTry makes writes block again, and reports whether bytes wait in the backlog: the
// caller must then have the writer goroutine flush it.
func (s *sockConn) endTry() (backlog bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trying = false
	return len(s.backlog) > 0
}

// Write writes p after the backlog. Between beginTry and endTry it never blocks: it
// reports all of p written, having kept in the backlog what the socket did not take; an
// error is the socket's (the connection is then broken, as after any failed write).
func (s *sockConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.trying {
		if err := s.flushLocked(); err != nil {
			return 0, err
		}
		return s.Conn.Write(p)
	}
	total := len(p)
	if len(s.backlog) == 0 {
		n, err := s.attempt(p)
		if err != nil {
			return n, err
		}
		p = p[n:]
	}
	if len(p) > 0 {
		// The socket is full (or a backlog already waits, which must go first).
		s.backlog = append(s.backlog, p...)
		s.pending.Store(true)
	}
	return total, nil
}

// flush writes the backlog, blocking (bounded by the write deadline).
func (s *sockConn) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *sockConn) flushLocked() error {
	if len(s.backlog) == 0 {
		return nil
	}
	_, err := s.Conn.Write(s.backlog)
	// Written or not (then the connection is finished), the bytes are done with. The buffer
	// is not kept: an idle connection holds none, and a full socket is the uncommon case.
	s.backlog = nil
	s.pending.Store(false)
	return err
}

// hasBacklog reports whether bytes wait in the backlog.
func (s *sockConn) hasBacklog() bool { return s.pending.Load() }

// CloseWrite half-closes the connection (conn.shutdown reaches it through tls.Conn.NetConn
// or halfRTTConn) after the backlog.
func (s *sockConn) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.flushLocked()
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		if cerr := cw.CloseWrite(); err == nil {
			err = cerr
		}
	}
	return err
}
