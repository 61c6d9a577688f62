// Package tests holds peerwire's integration and end-to-end tests: the public API over real
// loopback connections on every core, and the peer CLI as real processes.
package tests

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
