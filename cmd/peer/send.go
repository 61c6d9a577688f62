package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/peerwire/peerwire/framing"
	"github.com/peerwire/peerwire/nettransport"
)

var sendCommand = &command{
	name:    "send",
	args:    "[--home DIR] --to MULTIADDR (--trust ID... | --trust-any) [--alpn NAME]... [--timeout DUR] [MSG]...",
	summary: "send messages to a peer",
	details: `Connects to the peer at --to, which must present a certificate the trust flags allow (and
accept ours), and sends each MSG argument as one message, or, without arguments, each line
of standard input as it is read (without its line ending). Flags come before the messages;
an argument after "--" is a message even if it starts with "-".

After the last message, send closes the connection gracefully: it waits until the peer's
transport has read every message, then closes with code 0. The exit code is 0 only then;
otherwise it is 1 and stderr says what failed: the peer refused our certificate (and which
one), we refused the peer's, nobody answered, or the peer did not read the messages in time.
The peer can be 'peer listen' or any peerwire application speaking the same protocol.`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		pf := declarePeerFlags(fs)
		var to addrFlag
		fs.Var(&to, "to", "address of the peer, e.g. /ip4/127.0.0.1/udp/4001/quic-v1")
		timeout := fs.Duration("timeout", 10*time.Second, "bound on the connection attempt, each message and the wait for the final\nacknowledgement")
		return func(ctx context.Context, std stdio, args []string) error {
			if to.addr == nil {
				return usagef("missing --to")
			}
			if *timeout <= 0 {
				return usagef("--timeout must be positive, got %v", *timeout)
			}
			cred, err := pf.credential()
			if err != nil {
				return err
			}
			s := &sender{to: to, alpn: pf.protocols(), cred: cred, timeout: *timeout}
			return s.run(ctx, std.stdin, args)
		}
	},
}

var errInterrupted = errors.New("interrupted")

type sender struct {
	to      addrFlag
	alpn    []string
	cred    *nettransport.Credential
	timeout time.Duration

	conn nettransport.Connection
	sent uint64
}

func (s *sender) run(ctx context.Context, stdin io.Reader, args []string) (err error) {
	// The stream timeout bounds each write and the graceful close's wait for delivery.
	tr, err := nettransport.New(nettransport.Config{Logger: quietLogger, StreamTimeout: s.timeout})
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := s.connect(ctx, tr); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Tell the peer this was not a normal end.
			_ = s.conn.CloseWithError(nettransport.CodeShutdown, "peer send failed")
		}
	}()

	if len(args) > 0 {
		for _, a := range args {
			if err := s.send(ctx, []byte(a)); err != nil {
				return err
			}
		}
	} else if err := s.sendLines(ctx, stdin); err != nil {
		return err
	}

	// Send returns once a message is written to the stream, not once the peer has it: the
	// graceful Close waits until the peer has read every message, and only then closes.
	if err := s.conn.Close(); err != nil {
		var te *nettransport.TimeoutError
		if errors.As(err, &te) {
			return fmt.Errorf("the peer did not take delivery of all %d messages within %v: %w", s.sent, s.timeout, err)
		}
		return fmt.Errorf("closing the connection to %s after %d messages: %w", s.to.addr, s.sent, err)
	}
	return nil
}

func (s *sender) connect(ctx context.Context, tr nettransport.Transport) error {
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := tr.Dial(dctx, s.to.addr, s.alpn, s.cred)
	switch {
	case err == nil:
		s.conn = conn
		return nil
	case ctx.Err() != nil:
		return errInterrupted
	case dctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("connect to %s: no answer within %v (is a peer listening there?)", s.to.addr, s.timeout)
	}
	if errors.As(err, new(*nettransport.AddrError)) {
		return addrUsage("to", err)
	}
	return fmt.Errorf("connect to %s: %w", s.to.addr, err)
}

func (s *sender) send(ctx context.Context, msg []byte) error {
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.conn.Send(sctx, msg); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return fmt.Errorf("send message %d to %s: %w", s.sent+1, s.to.addr, err)
	}
	s.sent++
	return nil
}

// sendLines sends each line of r as it is read. Reading happens in its own goroutine so that
// an interrupt, or the connection ending, is noticed while waiting for a line; that goroutine
// ends when r does (for a terminal, the process exits first).
func (s *sender) sendLines(ctx context.Context, r io.Reader) error {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), framing.DefaultMaxMessageSize+len("\r\n"))
		for sc.Scan() {
			line := bytes.Clone(bytes.TrimSuffix(sc.Bytes(), []byte("\r")))
			select {
			case lines <- line:
			case <-stop:
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("a line is longer than the maximum message size (%d MiB)", framing.DefaultMaxMessageSize>>20)
			}
			readErr <- err
		}
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				select {
				case err := <-readErr:
					return fmt.Errorf("reading standard input: %w", err)
				default:
					return nil
				}
			}
			if err := s.send(ctx, line); err != nil {
				return err
			}
		case <-s.conn.Done():
			return fmt.Errorf("connection to %s ended after %d messages: %w", s.to.addr, s.sent, s.conn.Err())
		case <-ctx.Done():
			return errInterrupted
		}
	}
}
