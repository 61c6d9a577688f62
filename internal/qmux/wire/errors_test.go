package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransportErrorCodeValues(t *testing.T) {
	// RFC 9000 §20.1.
	for code, want := range map[TransportErrorCode]uint64{
		NoError: 0x00, InternalError: 0x01, ConnectionRefused: 0x02, FlowControlError: 0x03,
		StreamLimitError: 0x04, StreamStateError: 0x05, FinalSizeError: 0x06,
		FrameEncodingError: 0x07, TransportParameterError: 0x08, ConnectionIDLimitError: 0x09,
		ProtocolViolation: 0x0a, InvalidToken: 0x0b, ApplicationError: 0x0c,
		CryptoBufferExceeded: 0x0d, KeyUpdateError: 0x0e, AEADLimitReached: 0x0f, NoViablePath: 0x10,
	} {
		require.Equal(t, want, uint64(code), code.String())
	}
}

func TestTransportErrorCodeString(t *testing.T) {
	require.Equal(t, "NO_ERROR", NoError.String())
	require.Equal(t, "FRAME_ENCODING_ERROR", FrameEncodingError.String())
	require.Equal(t, "TRANSPORT_PARAMETER_ERROR", TransportParameterError.String())
	require.Equal(t, "PROTOCOL_VIOLATION", ProtocolViolation.String())
	require.Equal(t, "NO_VIABLE_PATH", NoViablePath.String())
	require.Equal(t, "CRYPTO_ERROR(0x78)", (CryptoErrorBase + 120).String())
	require.Equal(t, "0x1234", TransportErrorCode(0x1234).String())
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Code: FrameEncodingError, FrameType: uint64(FrameTypeStream), Reason: "frame truncated"}
	require.Equal(t, "qmux: FRAME_ENCODING_ERROR (frame type 0x8): frame truncated", e.Error())
	e = &Error{Code: ProtocolViolation, Reason: "record without frames"}
	require.Equal(t, "qmux: PROTOCOL_VIOLATION: record without frames", e.Error())
}

func TestFrameTypeString(t *testing.T) {
	require.Equal(t, "STREAM", FrameType(0x0f).String())
	require.Equal(t, "QX_TRANSPORT_PARAMETERS", FrameTypeTransportParameters.String())
	require.Equal(t, "QX_PING", FrameTypePingRequest.String())
	require.Equal(t, "0x21", FrameType(0x21).String())
}
