package qmux

import (
	"encoding/hex"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

// splitScript is a client's byte stream exercising the record layer: the deployed first
// record (with its non-minimal 8-byte Length), padding, STREAM frames with and without a
// Length, a FIN, a reset, flow-control and stream-limit updates and QX_PING requests.
func splitScript(t testing.TB) []byte {
	b, err := hex.DecodeString(deployedFirstRecord)
	require.NoError(t, err)
	record := func(frames ...wire.Frame) {
		payload := appendFrames(nil, frames...)
		b = append(wire.AppendRecordHeader(b, uint64(len(payload))), payload...)
	}
	record(&wire.PaddingFrame{Count: 3},
		&wire.StreamFrame{StreamID: 0, Data: []byte("hello "), HasLength: true},
		&wire.PingFrame{Sequence: 1})
	record(&wire.StreamFrame{StreamID: 0, Offset: 6, Data: []byte("world"), Fin: true}) // to the end of the record
	record(&wire.StreamFrame{StreamID: 2, Data: []byte("uni data"), Fin: true, HasLength: true},
		&wire.StreamFrame{StreamID: 4, Data: []byte("doomed"), HasLength: true},
		&wire.ResetStreamFrame{StreamID: 4, ErrorCode: 9, FinalSize: 6},
		&wire.MaxDataFrame{MaximumData: 1 << 30},
		&wire.PingFrame{Sequence: 2})
	record(&wire.MaxStreamsFrame{Bidi: true, MaximumStreams: 200})
	return b
}

// scriptResult is what a conn (the server) makes of splitScript.
type scriptResult struct {
	Bidi, Uni string
	ResetErr  error
	LastPing  uint64
	Capacity  session.Capacity
	Closed    error
}

func runScript(t *testing.T, chunks [][]byte) scriptResult {
	t.Helper()
	p := newPeer(t, testConfig(), false)
	defer p.close()
	for _, c := range chunks {
		p.write(c)
	}
	var r scriptResult
	bidi, err := readAll(t, accept(t, p.c))
	require.NoError(t, err)
	r.Bidi = string(bidi)
	uni, err := readAll(t, acceptUni(t, p.c))
	require.NoError(t, err)
	r.Uni = string(uni)
	_, r.ResetErr = readAll(t, accept(t, p.c))
	synctest.Wait()
	if pings := sent[*wire.PingFrame](p); len(pings) > 0 {
		r.LastPing = pings[len(pings)-1].Sequence
	}
	r.Capacity = p.c.StreamCapacity()
	r.Closed = p.c.Context().Err()
	return r
}

func TestInputSplitAtEveryByte(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		script := splitScript(t)
		want := scriptResult{
			Bidi:     "hello world",
			Uni:      "uni data",
			ResetErr: &session.StreamResetError{StreamID: 4, Code: 9, Remote: true},
			LastPing: 2,
			Capacity: session.Capacity{Bidi: 200, Uni: 3},
		}
		require.Equal(t, want, runScript(t, [][]byte{script}), "whole")
		for i := 1; i < len(script); i++ {
			require.Equal(t, want, runScript(t, [][]byte{script[:i], script[i:]}), fmt.Sprintf("split at %d", i))
		}
	})
}

func TestInputOneByteAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		script := splitScript(t)
		chunks := make([][]byte, len(script))
		for i := range script {
			chunks[i] = script[i : i+1]
		}
		got := runScript(t, chunks)
		require.Equal(t, "hello world", got.Bidi)
		require.Equal(t, "uni data", got.Uni)
		require.Equal(t, &session.StreamResetError{StreamID: 4, Code: 9, Remote: true}, got.ResetErr)
		require.Equal(t, uint64(2), got.LastPing)
		require.NoError(t, got.Closed)
	})
}

func TestTruncatedFrameSplitAtEveryByte(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := append([]byte(nil), splitScript(t)[:46]...) // the deployed parameters
		b = append(b, 0x02, 0x11, 0x00)                  // MAX_STREAM_DATA without its maximum
		for i := 1; i < len(b); i++ {
			p := newPeer(t, testConfig(), false)
			p.write(b[:i])
			p.write(b[i:])
			p.expectTransportClose(wire.FrameEncodingError)
			p.close()
		}
	})
}
