package quicsession_test

import (
	"net"
	"testing"
	"time"

	"github.com/peerwire/peerwire/internal/delayproxy"
)

// delayProxy starts a UDP delay proxy (internal/delayproxy) in front of upstream, adding
// delay each way, and returns the address clients dial. It closes with the test.
func delayProxy(tb testing.TB, upstream net.Addr, delay time.Duration) net.Addr {
	tb.Helper()
	p, err := delayproxy.UDP(upstream.String(), delay)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p.Addr()
}
