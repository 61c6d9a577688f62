package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/peerwire/peerwire/bench"
)

// defaultBenchRuns is how many times `peer bench` runs every case unless told: the median of
// three already discards one disturbed run, and a full-size run of every case on every system
// takes about two minutes on 2 CPUs. The figures in docs/BENCHMARKS.md use --runs 5.
const defaultBenchRuns = 3

var benchCommand = &command{
	name:    "bench",
	args:    "[--runs N] [--size tiny|full] [--json FILE] [--plot FILE.svg]",
	summary: "measure peerwire beside quic-go, TLS over TCP, TCP and go-libp2p on loopback and over a delayed link",
	details: `Runs every benchmark case (message rates at 64 B, 256 B and 4 KiB, bulk transfer, round-trip
latency p50 and p99, handshakes, memory per idle connection, fan-out of one message to 100
peers) on peerwire over QUIC and over QMux and on the references (raw quic-go, crypto/tls 1.3
over TCP, plain TCP, go-libp2p hosts over quic-v1 and over TCP), in this process, on 127.0.0.1;
then, through a proxy adding 25 ms each way, round-trip latency p50 (delay-rtt),
connect-to-first-message (delay-connect) and bulk transfer (delay-bulk) on both peerwire
systems, quic-go, TLS over TCP and TCP (the libp2p columns show a dash). Each run
measures all systems back to back (round trips and bulk transfers side by side, in blocks that take turns). The first table shows medians over the runs; the second
each peerwire figure's ratio to its reference (QUIC to quic-go, QMux to TLS over TCP, then both
to the go-libp2p transport of the same family), above 1
meaning peerwire is better. --plot draws the same comparison as an SVG chart. Progress goes to stderr. See
docs/BENCHMARKS.md for what each case measures.`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		runs := fs.Int("runs", defaultBenchRuns, "how many times to run every case (the tables show medians)")
		size := fs.String("size", "full", "tiny (a smoke test) or full (stable figures)")
		jsonOut := fs.String("json", "", "also write the report as JSON to `FILE` (- for stdout instead of the table)")
		plotOut := fs.String("plot", "", "also draw the comparison as an SVG chart in `FILE.svg`")
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
			if *plotOut != "" && !strings.EqualFold(filepath.Ext(*plotOut), ".svg") {
				return usagef("--plot draws SVG only: give a file name ending in .svg, not %q", *plotOut)
			}
			rep, err := bench.Run(ctx, sz, *runs, std.stderr)
			if err != nil {
				return err
			}
			if *plotOut != "" {
				if err := writeFile(*plotOut, rep.WriteSVG); err != nil {
					return err
				}
			}
			switch *jsonOut {
			case "-":
				return rep.WriteJSON(std.stdout)
			case "":
			default:
				if err := writeFile(*jsonOut, rep.WriteJSON); err != nil {
					return err
				}
			}
			return rep.WriteTable(std.stdout)
		}
	},
}

// writeFile creates name and fills it with write.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
