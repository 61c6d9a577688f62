package p2ptransport

import (
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peerwire/peerwire/internal/session"
)

// resetCode is the code of a plain Reset, Close's cancelled read side and CloseRead: 0, as
// in go-libp2p's QUIC transport.
const resetCode session.StreamErrorCode = 0

// stream adapts a bidirectional session stream to network.MuxedStream with the semantics of
// go-libp2p's QUIC transport: Close ends the write side gracefully and stops the read side,
// Reset aborts both.
type stream struct {
	s session.Stream
}

var _ network.MuxedStream = (*stream)(nil)

func (s *stream) Read(b []byte) (int, error) {
	n, err := s.s.Read(b)
	if err == io.EOF {
		return n, err // readers compare io.EOF with ==
	}
	return n, translate(err)
}

func (s *stream) Write(b []byte) (int, error) {
	n, err := s.s.Write(b)
	return n, translate(err)
}

// Close ends the write side (FIN after the data written) and tells the peer to stop sending.
func (s *stream) Close() error {
	s.s.CancelRead(resetCode)
	return translate(s.s.Close())
}

// CloseWrite ends the write side gracefully; reading goes on.
func (s *stream) CloseWrite() error { return translate(s.s.Close()) }

// CloseRead tells the peer to stop sending (STOP_SENDING); writing goes on.
func (s *stream) CloseRead() error {
	s.s.CancelRead(resetCode)
	return nil
}

// Reset aborts both directions with code 0.
func (s *stream) Reset() error { return s.ResetWithError(network.StreamErrorCode(resetCode)) }

// ResetWithError aborts both directions; the peer's reads and writes fail with a
// *network.StreamError carrying code.
func (s *stream) ResetWithError(code network.StreamErrorCode) error {
	s.s.CancelRead(session.StreamErrorCode(code))
	s.s.CancelWrite(session.StreamErrorCode(code))
	return nil
}

func (s *stream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s *stream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }
