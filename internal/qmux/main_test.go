package qmux

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every connection, listener
// and scripted peer must be shut down by the test that started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
