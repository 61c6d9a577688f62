package streampool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A configured maximum above MaxMessageSize is capped there: the two lengths above it are the
// graceful close's markers, never a message.
func TestMaxMessageSizeLeavesMarkersFree(t *testing.T) {
	require.Equal(t, uint32(MaxMessageSize), (&Config{MaxMessageSize: 1<<32 - 1}).maxMessage())
	require.Equal(t, uint32(MaxMessageSize), (&Config{MaxMessageSize: MaxMessageSize}).maxMessage())
	require.Equal(t, uint32(1000), (&Config{MaxMessageSize: 1000}).maxMessage())
	require.Less(t, uint32(MaxMessageSize), drainDone)
	require.Less(t, drainDone, drainRequest)
}
