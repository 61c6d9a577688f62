//go:build !unix

package qmux

import "net"

// nonBlockingWriter returns nil where a write cannot be attempted without blocking through
// syscall.RawConn: the conn's writer goroutine then writes every record.
func nonBlockingWriter(net.Conn) func([]byte) (int, error) { return nil }
