package qmux

import (
	"encoding/hex"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// deployedFirstRecord is the cleartext first record of a deployed QMux stack (see
// docs/qmux.md): Size 44, QX_TRANSPORT_PARAMETERS with an 8-byte Length of 28, then
// max_idle_timeout 30 ms, initial_max_data 1638400, initial_max_stream_data_* 16380,
// initial_max_streams_bidi 100, initial_max_streams_uni 3.
const deployedFirstRecord = "402cff5153300d0a0d0ac00000000000001c01011e04048019000005027ffc06027ffc07027ffc08024064090103"

func TestFirstRecordIsTransportParametersSentAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &session.Config{
			IdleTimeout:                30 * time.Second,
			KeepAlivePeriod:            -1,
			MaxIncomingStreams:         100,
			MaxIncomingUniStreams:      3,
			MaxStreamReceiveWindow:     16380,
			MaxConnectionReceiveWindow: 1 << 20,
		}
		_, nc := startConn(t, cfg, false)
		// The peer has sent nothing: the conn's parameters come anyway.
		want, err := hex.DecodeString("4028" + // Size 40 (2-byte varint)
			"ff5153300d0a0d0a" + // QX_TRANSPORT_PARAMETERS
			"1f" + // Length 31
			"010480007530" + // max_idle_timeout 30000 ms
			"040480100000" + // initial_max_data 1 MiB
			"05027ffc" + "06027ffc" + "07027ffc" + // initial_max_stream_data_* 16380
			"08024064" + // initial_max_streams_bidi 100
			"090103") // initial_max_streams_uni 3
		require.NoError(t, err)
		got := make([]byte, len(want))
		_, err = io.ReadFull(nc, got)
		require.NoError(t, err)
		require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got))
	})
}

func TestTransportParametersCarryDefaultLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &session.Config{MaxIncomingStreams: 7} // everything else default
		_, nc := startConn(t, cfg, true)
		payload, err := wire.NewRecordReader(nc, 0).Next()
		require.NoError(t, err)
		var p wire.Parser
		f, n, err := p.ParseNext(payload)
		require.NoError(t, err)
		require.Equal(t, len(payload), n, "the first record holds the parameters only")
		tp, ok := f.(*wire.TransportParametersFrame)
		require.True(t, ok, "first frame %T", f)
		require.Equal(t, wire.TransportParameters{
			MaxIdleTimeout:                 session.DefaultIdleTimeout,
			InitialMaxData:                 initialConnWindow,
			InitialMaxStreamDataBidiLocal:  initialStreamWindow,
			InitialMaxStreamDataBidiRemote: initialStreamWindow,
			InitialMaxStreamDataUni:        initialStreamWindow,
			InitialMaxStreamsBidi:          7,
			InitialMaxStreamsUni:           session.DefaultMaxIncomingUniStreams,
			MaxRecordSize:                  wire.DefaultMaxRecordSize,
		}, tp.Params)
	})
}

func TestDeployedFirstRecordAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t, testConfig(), true)
		raw, err := hex.DecodeString(deployedFirstRecord)
		require.NoError(t, err)
		p.write(raw)
		_ = expectFrame[*wire.TransportParametersFrame](p, nil)
		synctest.Wait()
		require.NoError(t, p.c.Context().Err(), "the conn closed")
		require.Equal(t, session.Capacity{Bidi: 100, Uni: 3}, p.c.StreamCapacity())

		// A stream we open may carry initial_max_stream_data_bidi_remote = 16380 bytes.
		s := open(t, p.c)
		data := pattern(20000, 1)
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(data)
			done <- err
		}()
		synctest.Wait()
		got, _ := p.streamData(uint64(s.StreamID()))
		require.Equal(t, data[:16380], got)
		require.Equal(t, []*wire.StreamDataBlockedFrame{{StreamID: uint64(s.StreamID()), MaximumStreamData: 16380}},
			sent[*wire.StreamDataBlockedFrame](p))
		p.send(&wire.MaxStreamDataFrame{StreamID: uint64(s.StreamID()), MaximumStreamData: 20000})
		require.NoError(t, <-done)
	})
}

// TestParametersThenCloseIsAcceptance: a peer that sends its parameters and closes at once
// accepted us: waiting for its parameters succeeds, every time, although the connection is
// closed by then.
func TestParametersThenCloseIsAcceptance(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			p := newPeer(t, testConfig(), true)
			params := appendFrames(nil, &wire.TransportParametersFrame{Params: peerParams()})
			closing := appendFrames(nil, &wire.ConnectionCloseFrame{IsApplication: true})
			b := append(wire.AppendRecordHeader(nil, uint64(len(params))), params...)
			b = append(wire.AppendRecordHeader(b, uint64(len(closing))), closing...)
			p.write(b)
			synctest.Wait()
			require.Error(t, p.c.Context().Err(), "closed")
			require.NoError(t, p.c.waitParams(t.Context()))
		})
	}
}
