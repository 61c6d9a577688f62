//go:build unix

package qmux

import (
	"net"
	"os"
	"syscall"
)

// nonBlockingWriter returns sockConn.attempt for a connection with a file descriptor (TCP):
// one write(2) on the descriptor, which the Go runtime keeps in non-blocking mode, without
// waiting for room when the socket is full. It returns nil for other connections.
func nonBlockingWriter(nc net.Conn) func([]byte) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{nc: nc, rc: rc}
	w.fn = w.write // once: a method value made per call would allocate
	return w.attempt
}

// rawWriter makes one write attempt on a descriptor through syscall.RawConn.Write, whose
// callback has no room for arguments or results: they pass through the fields. Calls are
// serialised by sockConn.mu.
type rawWriter struct {
	nc  net.Conn
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func (w *rawWriter) attempt(p []byte) (int, error) {
	w.p = p
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.n, w.err = nil, 0, nil
	if err == nil {
		err = werr
	}
	if err != nil {
		// As net.Conn.Write reports it.
		return n, &net.OpError{Op: "write", Net: w.nc.LocalAddr().Network(), Source: w.nc.LocalAddr(), Addr: w.nc.RemoteAddr(), Err: err}
	}
	return n, nil
}

// write is the RawConn.Write callback: it returns true, whatever happened, so that
// RawConn.Write never waits for the descriptor to become writable.
func (w *rawWriter) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			n, err = 0, nil // full
		case err != nil:
			n, err = 0, os.NewSyscallError("write", err)
		}
		w.n, w.err = n, err
		return true
	}
}
