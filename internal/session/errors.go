package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/peerwire/peerwire/certs"
)

// CloseKind says what ended a connection.
type CloseKind int

const (
	// ClosedByApplication: an application closed the connection with a code and reason.
	ClosedByApplication CloseKind = iota
	// ClosedByTransportError: the transport closed it because of a protocol violation or a
	// handshake failure; Code is the QUIC transport error code.
	ClosedByTransportError
	// ClosedByIdleTimeout: nothing was received for the idle timeout.
	ClosedByIdleTimeout
	// ClosedByNetwork: the underlying socket failed or was reset (TCP RST, stateless reset).
	ClosedByNetwork
)

// String names the kind.
func (k CloseKind) String() string {
	switch k {
	case ClosedByApplication:
		return "application"
	case ClosedByTransportError:
		return "transport error"
	case ClosedByIdleTimeout:
		return "idle timeout"
	case ClosedByNetwork:
		return "network"
	}
	return fmt.Sprintf("CloseKind(%d)", int(k))
}

// CloseError reports why a connection ended. Every operation on a closed connection returns
// it (wrapped or as is), and it unwraps to net.ErrClosed.
type CloseError struct {
	Kind CloseKind
	// Code is the application code (ClosedByApplication) or the transport error code
	// (ClosedByTransportError).
	Code uint64
	// Reason is the text sent with the close, if any.
	Reason string
	// Remote is true when the peer closed the connection, false when this side did.
	Remote bool
	// Err is the underlying error from the core, if any.
	Err error
}

// Error describes the close, saying which side closed it.
func (e *CloseError) Error() string {
	side := "locally"
	if e.Remote {
		side = "by peer"
	}
	var s string
	switch e.Kind {
	case ClosedByApplication:
		s = fmt.Sprintf("connection closed %s with code %#x", side, e.Code)
	case ClosedByTransportError:
		s = fmt.Sprintf("connection closed %s with transport error %#x", side, e.Code)
	case ClosedByIdleTimeout:
		s = "connection closed: idle timeout (peer unresponsive)"
	default:
		s = "connection lost"
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		return s
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns net.ErrClosed and the core's underlying error.
func (e *CloseError) Unwrap() []error {
	if e.Err != nil {
		return []error{net.ErrClosed, e.Err}
	}
	return []error{net.ErrClosed}
}

// Is reports whether target is ErrRejected and the peer's application closed the connection
// with CodeRejected: how a listener's refusal (Incoming.Reject) reaches its dialer, on both
// cores, whenever it arrives.
func (e *CloseError) Is(target error) bool {
	return target == ErrRejected && e.Remote && e.Kind == ClosedByApplication && e.Code == uint64(CodeRejected)
}

// Timeout reports whether the connection died of its idle timeout (net.Error).
func (e *CloseError) Timeout() bool { return e.Kind == ClosedByIdleTimeout }

// Temporary is false: a closed connection stays closed (net.Error).
func (e *CloseError) Temporary() bool { return false }

// StreamResetError reports that a stream was reset (RESET_STREAM) or stopped (STOP_SENDING)
// by either side.
type StreamResetError struct {
	StreamID int64
	Code     StreamErrorCode
	// Remote is true when the peer reset or stopped the stream.
	Remote bool
}

// Error says which side reset which stream with which code.
func (e *StreamResetError) Error() string {
	side := "locally"
	if e.Remote {
		side = "by peer"
	}
	return fmt.Sprintf("stream %d reset %s with code %#x", e.StreamID, side, uint64(e.Code))
}

// TimeoutError reports that an operation did not finish within its time limit, for example
// opening a stream while the peer grants no stream credit. It is a net.Error with Timeout()
// true and matches os.ErrDeadlineExceeded and context.DeadlineExceeded with errors.Is.
type TimeoutError struct {
	// Op names the operation: "open stream", "write", "handshake", ...
	Op string
	// After is the limit that expired (zero when a caller's deadline expired).
	After time.Duration
}

// Error names the operation and the limit.
func (e *TimeoutError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("%s: timed out after %v", e.Op, e.After)
	}
	return e.Op + ": timed out"
}

// Timeout is true (net.Error).
func (e *TimeoutError) Timeout() bool { return true }

// Temporary is true: the same operation may succeed later (net.Error).
func (e *TimeoutError) Temporary() bool { return true }

// Is matches os.ErrDeadlineExceeded and context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded || target == context.DeadlineExceeded
}

// ErrRejected is returned by Incoming.Accept after Incoming.Reject, and reported by a dialer
// whose listener's application refused the connection: it closed the connection with
// CodeRejected (from Dial, or as the close cause of a connection Dial had returned).
var ErrRejected = errors.New("connection refused by the peer's application")

var (
	_ net.Error = (*CloseError)(nil)
	_ net.Error = (*TimeoutError)(nil)
)

// ALPNError reports that a handshake negotiated no application protocol: the peer supports
// none of ours, offered none, or (as a listener) selected none. Offered is our list: the
// protocols we offered when dialing, those we support when listening.
type ALPNError struct {
	Offered  []string
	PeerAddr net.Addr
}

// Error names the peer and our protocols.
func (e *ALPNError) Error() string {
	return fmt.Sprintf("no application protocol (ALPN) agreed with peer (%v); ours are %q", e.PeerAddr, e.Offered)
}

// Is reports whether target is certs.ErrNoApplicationProtocol, the error the shared TLS
// verification (certs.TrustPolicy.VerifyConnection) returns for the same failure.
func (e *ALPNError) Is(target error) bool { return target == certs.ErrNoApplicationProtocol }
