package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/nettransport"
)

var listenCommand = &command{
	name:    "listen",
	args:    "[--home DIR] --addr MULTIADDR (--trust ID... | --trust-any) [--alpn NAME]...",
	summary: "accept trusted peers and print the messages they send",
	details: `Listens on --addr and accepts the peers the trust flags allow, any number at once. The first
line of output is "listening on <address>" with the real port (useful with port 0); then
each received message is printed on one line: the sender's certificate hash, a space and
the message. A message that is not printable UTF-8 on one line is printed Go-quoted.
Connections and refused attempts (with the reason) are logged to stderr.

listen runs until interrupted (SIGINT or SIGTERM); then it closes every connection, prints
the messages that had already arrived, and exits 0.`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		pf := declarePeerFlags(fs)
		var addr addrFlag
		fs.Var(&addr, "addr", "address to listen on, e.g. /ip4/0.0.0.0/udp/4001/quic-v1 (port 0 picks a free port)")
		return func(ctx context.Context, std stdio, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if addr.addr == nil {
				return usagef("missing --addr")
			}
			cred, err := pf.credential()
			if err != nil {
				return err
			}
			return listen(ctx, std, addr, pf.protocols(), cred)
		}
	},
}

// quietLogger discards the transport's debug events: the CLI reports what matters itself.
var quietLogger = slog.New(slog.DiscardHandler)

func listen(ctx context.Context, std stdio, addr addrFlag, alpn []string, cred *nettransport.Credential) error {
	tr, err := nettransport.New(nettransport.Config{Logger: quietLogger})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer func() {
		_ = tr.Close() // ends every connection, and so every serve goroutine
		wg.Wait()
	}()
	ln, err := tr.Listen(addr.addr, alpn, cred)
	if err != nil {
		return addrUsage("addr", err)
	}
	out := &lineWriter{w: std.stdout}
	log := &lineWriter{w: std.stderr}
	out.printf("listening on %s", ln.Addr())

	for {
		req, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		wg.Go(func() { serve(ctx, req, out, log) })
	}
}

// serve accepts one connection attempt and prints its messages until it ends.
func serve(ctx context.Context, req nettransport.IncomingRequest, out, log *lineWriter) {
	conn, err := req.Accept(ctx)
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case errors.As(err, new(*certs.RejectError)):
			log.printf("rejected connection from %s: %v", req.RemoteAddr(), err)
		default:
			log.printf("failed connection from %s: %v", req.RemoteAddr(), err)
		}
		return
	}
	peer := conn.RemoteIdentity().String()
	log.printf("connection from %s: peer %s… (%s), alpn %s", conn.RemoteAddr(), conn.RemoteIdentity().Short(), conn.RemotePeerID(), conn.ALPN())
	defer conn.Close()

	// Recv is not cancelled with ctx: on shutdown, closing the transport ends the connection,
	// and Recv still returns the messages that arrived before, so that none is lost.
	rctx := context.WithoutCancel(ctx)
	n := 0
	for {
		msg, _, err := conn.Recv(rctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case closedNormally(err):
				log.printf("connection from %s closed by peer after %s", conn.RemoteAddr(), messages(n))
			default:
				log.printf("connection from %s ended after %s: %v", conn.RemoteAddr(), messages(n), err)
			}
			return
		}
		out.printf("%s %s", peer, printable(msg))
		n++
	}
}

func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return strconv.Itoa(n) + " messages"
}

// closedNormally reports whether err is the peer closing the connection without an error
// (code 0).
func closedNormally(err error) bool {
	var ce *nettransport.CloseError
	return errors.As(err, &ce) && ce.Remote && ce.Code == uint64(nettransport.CodeNoError)
}

// printable returns msg as text if it is valid UTF-8 without control characters (tabs
// allowed), so that it fits on one output line, and Go-quoted otherwise.
func printable(msg []byte) string {
	if !utf8.Valid(msg) {
		return strconv.Quote(string(msg))
	}
	for _, r := range string(msg) {
		if r != '\t' && unicode.IsControl(r) {
			return strconv.Quote(string(msg))
		}
	}
	return string(msg)
}

// lineWriter writes whole lines to w, one at a time, so that lines from concurrent
// connections never interleave.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	b := fmt.Appendf(nil, format, args...)
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}
