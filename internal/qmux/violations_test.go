package qmux

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/quic-go/quic-go/quicvarint"
	"github.com/stretchr/testify/require"
)

// rawParams encodes a QX_TRANSPORT_PARAMETERS frame around a hand-made parameter list.
func rawParams(params ...[]byte) []byte {
	list := bytes.Join(params, nil)
	b := quicvarint.Append(nil, uint64(wire.FrameTypeTransportParameters))
	b = quicvarint.Append(b, uint64(len(list)))
	return append(b, list...)
}

// param encodes one transport parameter with a varint value.
func param(id, v uint64) []byte {
	val := quicvarint.Append(nil, v)
	b := quicvarint.Append(nil, id)
	b = quicvarint.Append(b, uint64(len(val)))
	return append(b, val...)
}

// violation is a peer that breaks the protocol in one way.
type violation struct {
	name   string
	cfg    func(*session.Config) // adjusts testConfig, if set
	script func(t *testing.T, p *peer)
	code   wire.TransportErrorCode
}

func runViolations(t *testing.T, cases []violation) {
	for _, v := range cases {
		t.Run(v.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				if v.cfg != nil {
					v.cfg(cfg)
				}
				p := newPeer(t, cfg, false)
				v.script(t, p)
				p.expectTransportClose(v.code)
			})
		})
	}
}

// afterHandshake runs script once both sides exchanged transport parameters.
func afterHandshake(script func(t *testing.T, p *peer)) func(t *testing.T, p *peer) {
	return func(t *testing.T, p *peer) {
		p.handshake(peerParams())
		script(t, p)
	}
}

// sendRaw returns a script step that sends one record carrying payload after the handshake.
func sendRaw(payload ...byte) func(t *testing.T, p *peer) {
	return afterHandshake(func(t *testing.T, p *peer) { p.sendPayload(payload) })
}

// TestTransportParameterViolations: draft-02 §4.2, a first frame other than
// QX_TRANSPORT_PARAMETERS, or a repeated one, is PROTOCOL_VIOLATION; §5.1, a prohibited
// parameter (and RFC 9000 §7.4, a malformed or duplicate one) is TRANSPORT_PARAMETER_ERROR.
func TestTransportParameterViolations(t *testing.T) {
	runViolations(t, []violation{
		{
			name:   "first frame not QX_TRANSPORT_PARAMETERS",
			script: func(t *testing.T, p *peer) { p.send(&wire.MaxDataFrame{MaximumData: 1 << 20}) },
			code:   wire.ProtocolViolation,
		},
		{
			name: "PADDING before QX_TRANSPORT_PARAMETERS",
			script: func(t *testing.T, p *peer) {
				p.send(&wire.PaddingFrame{Count: 1}, &wire.TransportParametersFrame{Params: peerParams()})
			},
			code: wire.ProtocolViolation,
		},
		{
			name:   "QX_TRANSPORT_PARAMETERS repeated in a later record",
			script: afterHandshake(func(t *testing.T, p *peer) { p.sendParams(peerParams()) }),
			code:   wire.ProtocolViolation,
		},
		{
			name: "QX_TRANSPORT_PARAMETERS repeated in the first record",
			script: func(t *testing.T, p *peer) {
				tp := &wire.TransportParametersFrame{Params: peerParams()}
				p.send(tp, tp)
			},
			code: wire.ProtocolViolation,
		},
		{
			name: "prohibited parameter stateless_reset_token",
			script: func(t *testing.T, p *peer) {
				token := append([]byte{0x02, 16}, make([]byte, 16)...)
				p.sendPayload(rawParams(param(0x04, 1<<20), token))
			},
			code: wire.TransportParameterError,
		},
		{
			name: "prohibited parameter initial_source_connection_id",
			script: func(t *testing.T, p *peer) {
				p.sendPayload(rawParams([]byte{0x0f, 4, 1, 2, 3, 4}))
			},
			code: wire.TransportParameterError,
		},
		{
			name: "max_record_size below 16382",
			script: func(t *testing.T, p *peer) {
				p.sendPayload(rawParams(param(0x0571c59429cd0845, wire.DefaultMaxRecordSize-1)))
			},
			code: wire.TransportParameterError,
		},
		{
			name: "duplicate parameter",
			script: func(t *testing.T, p *peer) {
				p.sendPayload(rawParams(param(0x04, 1), param(0x04, 2)))
			},
			code: wire.TransportParameterError,
		},
	})
}

func TestRecordViolations(t *testing.T) {
	runViolations(t, []violation{
		{
			name: "record larger than our max_record_size",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.write(append(quicvarint.Append(nil, wire.DefaultMaxRecordSize+1), make([]byte, wire.DefaultMaxRecordSize+1)...))
			}),
			code: wire.FrameEncodingError,
		},
		{
			name:   "record with Size 0",
			script: afterHandshake(func(t *testing.T, p *peer) { p.write([]byte{0x00}) }),
			code:   wire.ProtocolViolation,
		},
		{
			name:   "record with Size 0 before the parameters",
			script: func(t *testing.T, p *peer) { p.write([]byte{0x00}) },
			code:   wire.ProtocolViolation,
		},
		{
			name:   "truncated MAX_STREAM_DATA",
			script: sendRaw(0x11, 0x00),
			code:   wire.FrameEncodingError,
		},
		{
			name:   "STREAM whose Length runs past the record",
			script: sendRaw(0x0a, 0x01, 0x0a, 'a', 'b', 'c'),
			code:   wire.FrameEncodingError,
		},
		{
			name: "truncated QX_TRANSPORT_PARAMETERS",
			script: func(t *testing.T, p *peer) {
				b := rawParams(param(0x04, 1<<20))
				p.sendPayload(b[:len(b)-1])
			},
			code: wire.FrameEncodingError,
		},
	})
}

func TestRecordViolationDiscardsWhatFollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.write([]byte{0x00})
		// The conn keeps reading (and discarding) until the peer ends its side, so a peer
		// still writing when we close is not reset and reads our CONNECTION_CLOSE.
		p.send(&wire.MaxDataFrame{MaximumData: 1 << 30})
		cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
		require.Equal(t, uint64(wire.ProtocolViolation), cc.ErrorCode)
	})
}

func TestProhibitedFrames(t *testing.T) {
	runViolations(t, []violation{
		{name: "PING", script: sendRaw(0x01), code: wire.FrameEncodingError},
		{name: "ACK", script: sendRaw(0x02, 0x00, 0x00, 0x00, 0x00), code: wire.FrameEncodingError},
		{name: "ACK_ECN", script: sendRaw(0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00), code: wire.FrameEncodingError},
		{name: "CRYPTO", script: sendRaw(0x06, 0x00, 0x01, 0xaa), code: wire.FrameEncodingError},
		{name: "NEW_TOKEN", script: sendRaw(0x07, 0x01, 0xaa), code: wire.FrameEncodingError},
		{name: "NEW_CONNECTION_ID", script: sendRaw(0x18, 0x01, 0x00, 0x01, 0xaa), code: wire.FrameEncodingError},
		{name: "RETIRE_CONNECTION_ID", script: sendRaw(0x19, 0x00), code: wire.FrameEncodingError},
		{name: "PATH_CHALLENGE", script: sendRaw(0x1a, 1, 2, 3, 4, 5, 6, 7, 8), code: wire.FrameEncodingError},
		{name: "PATH_RESPONSE", script: sendRaw(0x1b, 1, 2, 3, 4, 5, 6, 7, 8), code: wire.FrameEncodingError},
		{name: "HANDSHAKE_DONE", script: sendRaw(0x1e), code: wire.FrameEncodingError},
		{name: "unknown frame type", script: sendRaw(0x21), code: wire.FrameEncodingError},
		// The extensions are not advertised, so their frames are refused.
		{name: "DATAGRAM not negotiated", script: sendRaw(0x30, 'x'), code: wire.ProtocolViolation},
		// RFC 9000 §12.4 and §19.11.
		{name: "frame type not minimally encoded", script: sendRaw(0x40, 0x10, 0x01), code: wire.ProtocolViolation},
		{name: "MAX_STREAMS above 2^60", script: sendRaw(0x12, 0xd0, 0, 0, 0, 0, 0, 0, 1), code: wire.FrameEncodingError},
		{name: "RESET_STREAM_AT not negotiated", script: sendRaw(0x24, 0x01, 0x00, 0x00, 0x00), code: wire.FrameEncodingError},
	})
}

func TestStreamViolations(t *testing.T) {
	runViolations(t, []violation{
		{
			name: "STREAM offset after a gap",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Data: []byte("abc"), HasLength: true})
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Offset: 5, Data: []byte("x"), HasLength: true})
			}),
			code: wire.ProtocolViolation,
		},
		{
			name: "STREAM data repeated",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Data: []byte("abc"), HasLength: true})
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Data: []byte("abc"), HasLength: true})
			}),
			code: wire.ProtocolViolation,
		},
		{
			name: "STREAM on a new stream not at offset 0",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirUni), Offset: 1, Data: []byte("x")})
			}),
			code: wire.ProtocolViolation,
		},
		{
			name: "STREAM data beyond the stream limit",
			cfg:  func(c *session.Config) { c.MaxStreamReceiveWindow = 16 << 10 },
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.sendStream(p.id(0, dirBidi), 0, make([]byte, 16<<10), false)
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Offset: 16 << 10, Data: []byte("x")})
			}),
			code: wire.FlowControlError,
		},
		{
			name: "STREAM data beyond the connection limit",
			cfg:  func(c *session.Config) { c.MaxConnectionReceiveWindow = 32 << 10 },
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.sendStream(p.id(0, dirBidi), 0, make([]byte, 20<<10), false)
				p.sendStream(p.id(1, dirBidi), 0, make([]byte, 20<<10), false)
			}),
			code: wire.FlowControlError,
		},
		{
			name: "RESET_STREAM final size beyond the stream limit",
			cfg:  func(c *session.Config) { c.MaxStreamReceiveWindow = 16 << 10 },
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.ResetStreamFrame{StreamID: p.id(0, dirBidi), FinalSize: 16<<10 + 1})
			}),
			code: wire.FlowControlError,
		},
		{
			name: "bidirectional stream beyond our limit",
			cfg:  func(c *session.Config) { c.MaxIncomingStreams = 2 },
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(2, dirBidi), Data: []byte("x")})
			}),
			code: wire.StreamLimitError,
		},
		{
			name: "unidirectional stream beyond our limit",
			cfg:  func(c *session.Config) { c.MaxIncomingUniStreams = 1 },
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirUni), Data: []byte("x")})
				p.send(&wire.StreamFrame{StreamID: p.id(1, dirUni), Data: []byte("x")})
			}),
			code: wire.StreamLimitError,
		},
		{
			name: "bidirectional stream when we allow none",
			cfg:  func(c *session.Config) { c.MaxIncomingStreams = 0 },
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StopSendingFrame{StreamID: p.id(0, dirBidi)})
			}),
			code: wire.StreamLimitError,
		},
		{
			name: "STREAM on our stream not yet opened",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.ourID(0, dirBidi), Data: []byte("x")})
			}),
			code: wire.StreamStateError,
		},
		{
			name: "STREAM on our send-only stream",
			script: afterHandshake(func(t *testing.T, p *peer) {
				s, err := p.c.OpenUniStream(context.Background())
				require.NoError(t, err)
				p.send(&wire.StreamFrame{StreamID: uint64(s.StreamID()), Data: []byte("x")})
			}),
			code: wire.StreamStateError,
		},
		{
			name: "RESET_STREAM on our send-only stream not yet opened",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.ResetStreamFrame{StreamID: p.ourID(0, dirUni)})
			}),
			code: wire.StreamStateError,
		},
		{
			name: "MAX_STREAM_DATA on the peer's send-only stream",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.MaxStreamDataFrame{StreamID: p.id(0, dirUni), MaximumStreamData: 1})
			}),
			code: wire.StreamStateError,
		},
		{
			name: "STOP_SENDING on the peer's send-only stream",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StopSendingFrame{StreamID: p.id(0, dirUni)})
			}),
			code: wire.StreamStateError,
		},
		{
			name: "RESET_STREAM final size below the data received",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Data: []byte("abcdef"), HasLength: true})
				p.send(&wire.ResetStreamFrame{StreamID: p.id(0, dirBidi), FinalSize: 3})
			}),
			code: wire.FinalSizeError,
		},
		{
			name: "RESET_STREAM final size other than the FIN's",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Data: []byte("abcdef"), Fin: true})
				p.send(&wire.ResetStreamFrame{StreamID: p.id(0, dirBidi), FinalSize: 7})
			}),
			code: wire.FinalSizeError,
		},
		{
			name: "STREAM data after the FIN",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Data: []byte("abc"), Fin: true})
				p.send(&wire.StreamFrame{StreamID: p.id(0, dirBidi), Offset: 3, Data: []byte("d")})
			}),
			code: wire.FinalSizeError,
		},
	})
}

func TestPingViolations(t *testing.T) {
	runViolations(t, []violation{
		{
			name: "QX_PING request sequence repeated",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.PingFrame{Sequence: 5})
				p.send(&wire.PingFrame{Sequence: 5})
			}),
			code: wire.ProtocolViolation,
		},
		{
			name: "QX_PING request sequence decreasing",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.PingFrame{Sequence: 5}, &wire.PingFrame{Sequence: 4})
			}),
			code: wire.ProtocolViolation,
		},
		{
			name: "QX_PING response to a request never sent",
			script: afterHandshake(func(t *testing.T, p *peer) {
				p.send(&wire.PingFrame{Response: true, Sequence: 1})
			}),
			code: wire.ProtocolViolation,
		},
	})
}

func TestViolationNamesTheFrameType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.sendPayload([]byte{0x1e})
		cc := p.expectTransportClose(wire.FrameEncodingError)
		require.Equal(t, uint64(wire.FrameTypeHandshakeDone), cc.FrameType)
		require.NotEmpty(t, cc.Reason)
	})
}

func TestPeerApplicationClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.send(&wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: 0x42, Reason: []byte("bye")})
		ce := p.closeErr()
		require.Equal(t, &session.CloseError{Kind: session.ClosedByApplication, Code: 0x42, Reason: "bye", Remote: true}, ce)
		_, err := p.c.AcceptStream(context.Background())
		require.ErrorIs(t, err, net.ErrClosed)
		p.expectEOF() // no CONNECTION_CLOSE in reply
	})
}

func TestPeerTransportClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		p.send(&wire.ConnectionCloseFrame{ErrorCode: uint64(wire.FlowControlError), FrameType: 0x08, Reason: []byte("too much")})
		ce := p.closeErr()
		require.Equal(t, &session.CloseError{Kind: session.ClosedByTransportError, Code: 0x03, Reason: "too much", Remote: true}, ce)
		p.expectEOF()
	})
}

func TestPeerHalfCloseWithoutConnectionClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		require.NoError(t, p.nc.Close())
		ce := p.closeErr()
		require.Equal(t, session.ClosedByNetwork, ce.Kind)
		require.True(t, ce.Remote)
	})
}

func TestCloseWithErrorSendsConnectionClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		require.NoError(t, p.c.CloseWithError(0x17, "done"))
		cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
		require.Equal(t, &wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: 0x17, Reason: []byte("done")}, cc)
		ce := p.closeErr()
		require.Equal(t, &session.CloseError{Kind: session.ClosedByApplication, Code: 0x17, Reason: "done"}, ce)
		require.NoError(t, p.c.CloseWithError(0x18, "again"), "closing twice")
		p.expectEOF()
	})
}

func TestCloseWithErrorTruncatesLongReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		p.handshake(peerParams())
		require.NoError(t, p.c.CloseWithError(1, strings.Repeat("r", 100_000)))
		cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
		require.Len(t, cc.Reason, maxReason)
	})
}

func TestCloseBeforePeerParametersSendsOursFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), false)
		require.NoError(t, p.c.CloseWithError(3, "no"))
		_, ok := p.nextFrame().(*wire.TransportParametersFrame)
		require.True(t, ok)
		cc := expectFrame[*wire.ConnectionCloseFrame](p, nil)
		require.Equal(t, uint64(3), cc.ErrorCode)
		// The conn lingers for the peer's half-close, then ends within closeLinger.
		start := time.Now()
		p.expectEOF()
		require.LessOrEqual(t, time.Since(start), closeLinger)
	})
}
