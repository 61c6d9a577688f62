package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/peerwire/peerwire/bench"
)

var benchCommand = &command{
	name:    "bench",
	args:    "[--runs N] [--size tiny|full] [--json FILE]",
	summary: "measure peerwire beside raw quic-go, TLS over TCP and TCP on loopback",
	details: `Runs every benchmark case (small messages, bulk, round-trip latency, handshakes, idle
connection memory) on peerwire over QUIC and over QMux and on the references (raw quic-go,
crypto/tls 1.3 over TCP, plain TCP), in this process, on 127.0.0.1. Each run measures all
systems back to back; the table shows medians over the runs and each peerwire figure's ratio
to its reference (QUIC to quic-go, QMux to TLS over TCP), above 1 meaning peerwire is better.
Progress goes to stderr.`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		runs := fs.Int("runs", 5, "how many times to run every case (the table shows medians)")
		size := fs.String("size", "full", "tiny (a smoke test) or full (stable figures)")
		jsonOut := fs.String("json", "", "also write the report as JSON to `FILE` (- for stdout)")
		return func(ctx context.Context, std stdio, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if *runs < 1 {
				return usagef("--runs must be at least 1")
			}
			var sz bench.Size
			switch *size {
			case "tiny":
				sz = bench.Tiny
			case "full":
				sz = bench.Full
			default:
				return usagef("--size must be tiny or full, not %q", *size)
			}
			rep, err := bench.Run(ctx, sz, *runs, std.stderr)
			if err != nil {
				return err
			}
			if *jsonOut == "-" {
				return rep.WriteJSON(std.stdout)
			}
			if err := rep.WriteTable(std.stdout); err != nil {
				return err
			}
			if *jsonOut != "" {
				f, err := os.Create(*jsonOut)
				if err != nil {
					return err
				}
				if err := rep.WriteJSON(f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("writing %s: %w", *jsonOut, err)
				}
			}
			return nil
		}
	},
}
