package p2ptransport

import (
	"errors"
	"math"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peerwire/peerwire/internal/session"
)

// translate maps the session's errors to libp2p's, once, at the boundary: a reset stream
// becomes a *network.StreamError and a connection closed by an application a
// *network.ConnError, both keeping the session error as TransportError. Codes that do not fit
// libp2p's 32 bits become the OutOfRange codes, as in go-libp2p's QUIC transport. Every other
// error (timeouts, transport failures, io.EOF) is returned unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*session.StreamResetError](err); ok {
		code := network.StreamCodeOutOfRange
		if uint64(se.Code) <= math.MaxUint32 {
			code = network.StreamErrorCode(se.Code)
		}
		return &network.StreamError{ErrorCode: code, Remote: se.Remote, TransportError: err}
	}
	if ce, ok := errors.AsType[*session.CloseError](err); ok && ce.Kind == session.ClosedByApplication {
		code := network.ConnCodeOutOfRange
		if ce.Code <= math.MaxUint32 {
			code = network.ConnErrorCode(ce.Code)
		}
		return &network.ConnError{ErrorCode: code, Remote: ce.Remote, TransportError: err}
	}
	return err
}
