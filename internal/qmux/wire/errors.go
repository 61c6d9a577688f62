package wire

import "fmt"

// TransportErrorCode is a QUIC transport error code (RFC 9000 §20.1), carried
// in a CONNECTION_CLOSE frame of type 0x1c.
type TransportErrorCode uint64

// Transport error codes of RFC 9000 §20.1.
const (
	NoError                 TransportErrorCode = 0x00
	InternalError           TransportErrorCode = 0x01
	ConnectionRefused       TransportErrorCode = 0x02
	FlowControlError        TransportErrorCode = 0x03
	StreamLimitError        TransportErrorCode = 0x04
	StreamStateError        TransportErrorCode = 0x05
	FinalSizeError          TransportErrorCode = 0x06
	FrameEncodingError      TransportErrorCode = 0x07
	TransportParameterError TransportErrorCode = 0x08
	ConnectionIDLimitError  TransportErrorCode = 0x09
	ProtocolViolation       TransportErrorCode = 0x0a
	InvalidToken            TransportErrorCode = 0x0b
	ApplicationError        TransportErrorCode = 0x0c
	CryptoBufferExceeded    TransportErrorCode = 0x0d
	KeyUpdateError          TransportErrorCode = 0x0e
	AEADLimitReached        TransportErrorCode = 0x0f
	NoViablePath            TransportErrorCode = 0x10
	// CryptoErrorBase is the first of the CRYPTO_ERROR codes 0x0100-0x01ff,
	// which carry a TLS alert in their low byte.
	CryptoErrorBase TransportErrorCode = 0x0100
)

var transportErrorNames = [...]string{
	NoError:                 "NO_ERROR",
	InternalError:           "INTERNAL_ERROR",
	ConnectionRefused:       "CONNECTION_REFUSED",
	FlowControlError:        "FLOW_CONTROL_ERROR",
	StreamLimitError:        "STREAM_LIMIT_ERROR",
	StreamStateError:        "STREAM_STATE_ERROR",
	FinalSizeError:          "FINAL_SIZE_ERROR",
	FrameEncodingError:      "FRAME_ENCODING_ERROR",
	TransportParameterError: "TRANSPORT_PARAMETER_ERROR",
	ConnectionIDLimitError:  "CONNECTION_ID_LIMIT_ERROR",
	ProtocolViolation:       "PROTOCOL_VIOLATION",
	InvalidToken:            "INVALID_TOKEN",
	ApplicationError:        "APPLICATION_ERROR",
	CryptoBufferExceeded:    "CRYPTO_BUFFER_EXCEEDED",
	KeyUpdateError:          "KEY_UPDATE_ERROR",
	AEADLimitReached:        "AEAD_LIMIT_REACHED",
	NoViablePath:            "NO_VIABLE_PATH",
}

// String returns the RFC 9000 name of the code, e.g. "FRAME_ENCODING_ERROR".
func (c TransportErrorCode) String() string {
	if c < TransportErrorCode(len(transportErrorNames)) {
		return transportErrorNames[c]
	}
	if c >= CryptoErrorBase && c <= CryptoErrorBase+0xff {
		return fmt.Sprintf("CRYPTO_ERROR(0x%x)", uint64(c-CryptoErrorBase))
	}
	return fmt.Sprintf("0x%x", uint64(c))
}

// Error is a violation of the QMux wire format found while decoding the peer's
// input. The connection closes with a CONNECTION_CLOSE frame of type 0x1c
// carrying Code, FrameType and Reason.
type Error struct {
	// Code is the transport error code to close the connection with.
	Code TransportErrorCode
	// FrameType is the type of the frame that caused the error, or 0 when the
	// error is not tied to a frame (a malformed record).
	FrameType uint64
	// Reason is a human-readable explanation, suitable for the Reason Phrase.
	Reason string
}

func (e *Error) Error() string {
	if e.FrameType != 0 {
		return fmt.Sprintf("qmux: %s (frame type 0x%x): %s", e.Code, e.FrameType, e.Reason)
	}
	return fmt.Sprintf("qmux: %s: %s", e.Code, e.Reason)
}

func newError(code TransportErrorCode, ft FrameType, reason string) *Error {
	return &Error{Code: code, FrameType: uint64(ft), Reason: reason}
}

// errTruncated reports a frame that does not fit in the rest of its record
// (draft-ietf-quic-qmux-02 §3.2: "If the end of the Frames field is not
// aligned to a frame boundary ... FRAME_ENCODING_ERROR").
func errTruncated(ft FrameType) *Error {
	return newError(FrameEncodingError, ft, "frame truncated at end of record")
}
