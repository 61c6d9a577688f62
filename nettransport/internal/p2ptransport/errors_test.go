package p2ptransport

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
)

func TestTranslate(t *testing.T) {
	reset := &session.StreamResetError{StreamID: 4, Code: 7, Remote: true}
	var se *network.StreamError
	require.ErrorAs(t, translate(fmt.Errorf("wrapped: %w", reset)), &se)
	require.Equal(t, network.StreamErrorCode(7), se.ErrorCode)
	require.True(t, se.Remote)
	require.ErrorIs(t, se, network.ErrReset)
	var back *session.StreamResetError
	require.ErrorAs(t, se, &back, "the session error stays reachable")

	require.ErrorAs(t, translate(&session.StreamResetError{Code: math.MaxUint32 + 1}), &se)
	require.Equal(t, network.StreamCodeOutOfRange, se.ErrorCode)
	require.ErrorAs(t, translate(&session.StreamResetError{Code: math.MaxUint32}), &se)
	require.Equal(t, network.StreamErrorCode(math.MaxUint32), se.ErrorCode)

	var ce *network.ConnError
	closed := &session.CloseError{Kind: session.ClosedByApplication, Code: 9, Remote: true}
	require.ErrorAs(t, translate(closed), &ce)
	require.Equal(t, network.ConnErrorCode(9), ce.ErrorCode)
	require.True(t, ce.Remote)
	require.ErrorIs(t, ce, net.ErrClosed)
	require.ErrorAs(t, translate(&session.CloseError{Kind: session.ClosedByApplication, Code: 1 << 40}), &ce)
	require.Equal(t, network.ConnCodeOutOfRange, ce.ErrorCode)

	// Closes without an application code, timeouts and the rest pass through.
	idle := &session.CloseError{Kind: session.ClosedByIdleTimeout}
	require.Same(t, idle, translate(idle))
	require.False(t, errors.As(translate(idle), &ce))
	timeout := &session.TimeoutError{Op: "read"}
	require.Same(t, timeout, translate(timeout))
	require.Equal(t, io.EOF, translate(io.EOF))
	require.NoError(t, translate(nil))
}
