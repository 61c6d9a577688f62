package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/bench"
)

func TestCLIBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--runs", "0"}, "--runs must be at least 1"},
		{[]string{"bench", "--size", "huge"}, `--size must be tiny or full, not "huge"`},
		{[]string{"bench", "--plot", "chart.png"}, `--plot draws SVG only`},
		{[]string{"bench", "now"}, `unexpected argument "now"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCLI(t, "", c.args...)
			require.Equal(t, exitUsage, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stderr, c.want)
			require.Empty(t, r.stdout)
		})
	}
}

// TestCLIBench runs every case once at the tiny size and checks the outputs' shape, not the
// figures.
func TestCLIBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark system")
	}
	dir := t.TempDir()
	jsonFile, svgFile := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"bench", "--size", "tiny", "--runs", "1", "--json", jsonFile, "--plot", svgFile}, nil, &stdout, &stderr)
	require.Equal(t, exitOK, code, stderr.String())
	require.Contains(t, stderr.String(), "run 1/1: libp2p-tcp: fanout-p50 ")
	require.Contains(t, stderr.String(), "run 1/1: peerwire-qmux: delay-bulk ")

	out := stdout.String()
	for _, s := range bench.Systems() {
		require.Contains(t, out, s.Name)
	}
	for _, m := range bench.Metrics() {
		require.Contains(t, out, m.Name+" ("+m.Unit+")")
	}
	require.Contains(t, out, "peerwire-qmux ÷ libp2p-tcp")
	require.Contains(t, out, "medians of 1 run(s) at tiny size")

	var rep bench.Report
	data, err := os.ReadFile(jsonFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	figures := 0
	for _, c := range bench.Cases() {
		for _, s := range bench.Systems() {
			if c.Measures(s) {
				figures += len(c.Metrics)
			}
		}
	}
	require.Len(t, rep.Results, figures, "a figure for every case on every system it measures")
	require.Equal(t, "tiny", rep.Size.Name)

	svg, err := os.ReadFile(svgFile)
	require.NoError(t, err)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the chart is not well-formed XML")
	}
	for _, m := range bench.Metrics() {
		require.Contains(t, string(svg), ">"+m.Name+"<")
	}
}
