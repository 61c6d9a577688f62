// Package wire is the QMux-02 wire codec: records, frames and transport
// parameters, as specified by draft-ietf-quic-qmux-02 on top of the QUIC
// version 1 frame formats of RFC 9000 §19 (and the negotiated DATAGRAM
// (RFC 9221) and RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset)
// extensions).
//
// The package holds no connection state: it turns bytes into values and values
// into bytes, and reports every malformed input as an *Error whose Code is the
// transport error code the connection must close with.
//
// # Records
//
// A QMux byte stream is a sequence of records, each a varint Size followed by
// Size bytes of whole QUIC frames. RecordReader reads records from an
// io.Reader into a reused buffer and enforces the max_record_size we
// advertised. On the sending side, BeginRecord reserves a fixed-length Size
// field, the caller appends frames, and EndRecord patches the Size in.
//
// # Frames
//
// Every frame type is a struct with Append (encode), Length (encoded size)
// and Type. A Parser decodes one frame at a time from a record's payload.
// It owns one value of each frame type and returns a pointer to it, so the
// steady-state path does not allocate; the value, and any byte slices in it
// (which alias the record buffer), are valid until the next call.
//
//	p := wire.Parser{MaxDatagramFrameSize: ourParams.MaxDatagramFrameSize}
//	for len(payload) > 0 {
//		f, n, err := p.ParseNext(payload)
//		if err != nil {
//			return err // *wire.Error: close with err.Code
//		}
//		payload = payload[n:]
//		switch f := f.(type) {
//		case *wire.StreamFrame:
//			// ...
//		}
//	}
//
// # Transport parameters
//
// TransportParameters holds the parameters QMux permits, with RFC 9000 §18.2
// defaults when absent (and max_record_size defaulting to 16382). They travel
// in the QX_TRANSPORT_PARAMETERS frame (TransportParametersFrame), which must
// be the first frame each side sends; enforcing that order is the connection's
// job, not this package's.
package wire
