// Command peer runs peerwire nodes from the command line: it creates a node's identity
// (an Ed25519 key and a self-signed certificate), prints it, listens for authenticated peers
// and prints the messages they send, sends messages to a peer, and runs a demonstration of
// several nodes on loopback.
//
// Usage:
//
//	peer init   [--home DIR] [--force]
//	peer id     [--home DIR] [--json | --hash | --peer-id]
//	peer listen [--home DIR] --addr MULTIADDR (--trust ID... | --trust-any) [--alpn NAME]...
//	peer send   [--home DIR] --to MULTIADDR (--trust ID... | --trust-any) [--alpn NAME]... [--timeout DUR] [MSG]...
//	peer demo
//	peer bench  [--runs N] [--size tiny|full] [--json FILE] [--plot FILE.svg]
//	peer version
//	peer help [COMMAND]
//
// Exit codes: 0 success, 1 runtime failure (the message says what failed and why), 2 bad
// usage. See docs/cli.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong
)

// version is the release, set with -ldflags "-X main.version=v1.2.3"; otherwise the module
// version from the build information is used.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process the default way, in case a
	// graceful shutdown hangs.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stdio is where a command reads and writes.
type stdio struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand. setup declares its flags on fs and returns the function that
// runs it once the flags are parsed, with the remaining arguments.
type command struct {
	name    string
	args    string // synopsis after the name, e.g. "[--home DIR] [--force]"
	summary string // one line for the command list
	details string // paragraphs printed by "peer help <name>"
	setup   func(fs *flag.FlagSet) func(ctx context.Context, std stdio, args []string) error
}

var commands []*command

func init() {
	// Assigned here rather than in the declaration because help refers to commands.
	commands = []*command{initCommand, idCommand, listenCommand, sendCommand, demoCommand, benchCommand, versionCommand, helpCommand}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError reports a wrong command line; run prints it with a hint and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes the command line args (without the program name) and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	std := stdio{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "peer: unknown command %q\nRun 'peer help' for the list of commands.\n", name)
		return exitUsage
	}

	fs := newFlagSet(cmd)
	exec := cmd.setup(fs)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(stdout, cmd, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "peer %s: %v\nRun 'peer %s -h' for usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	err := exec(ctx, std, fs.Args())
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "peer %s: %v\nRun 'peer %s -h' for usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "peer %s: %v\n", cmd.name, err)
		return exitFailure
	}
}

// newFlagSet returns a silent flag set: run prints parse errors and usage itself, so that an
// error is one line plus a hint instead of the whole flag list, and -h goes to stdout.
func newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("peer "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func printMainUsage(w io.Writer) {
	fmt.Fprint(w, `peer runs peerwire nodes: authenticated peer-to-peer messages over QUIC,
with self-signed certificates and explicit trust.

Usage:
  peer <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'peer help <command>' or 'peer <command> -h' for a command's flags.
Start with 'peer demo'. The identity lives in --home (default $PEER_HOME, else ~/.peerwire).
`)
}

func printCommandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: peer %s %s\n\n%s\n", cmd.name, cmd.args, cmd.details)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs)
	}
}

// flagArgs names the argument of each flag that takes one, for the usage text.
var flagArgs = map[string]string{
	"home":    "DIR",
	"addr":    "MULTIADDR",
	"to":      "MULTIADDR",
	"trust":   "ID",
	"alpn":    "NAME",
	"timeout": "DURATION",
}

// printFlags lists the flags as they are documented: two dashes and a placeholder argument.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flagArgs[f.Name], f.Usage
		fmt.Fprintf(w, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(w, " %s", arg)
		}
		usage = strings.ReplaceAll(usage, "\n", "\n      ")
		fmt.Fprintf(w, "\n      %s", usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

var helpCommand = &command{
	name:    "help",
	args:    "[COMMAND]",
	summary: "show the commands, or one command's flags",
	details: "Without an argument, help lists the commands; with one, it prints that command's usage and flags.",
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		return func(_ context.Context, std stdio, args []string) error {
			switch len(args) {
			case 0:
				printMainUsage(std.stdout)
				return nil
			case 1:
				cmd := lookup(args[0])
				if cmd == nil {
					return usagef("unknown command %q", args[0])
				}
				cfs := newFlagSet(cmd)
				cmd.setup(cfs)
				printCommandUsage(std.stdout, cmd, cfs)
				return nil
			}
			return usagef("unexpected argument %q", args[1])
		}
	},
}

var versionCommand = &command{
	name:    "version",
	args:    "",
	summary: "print the version",
	details: "Prints the version of peer, the source revision it was built from and the Go version.",
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		return func(_ context.Context, std stdio, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			fmt.Fprintf(std.stdout, "peer %s (%s %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		}
	},
}

// buildVersion is the release version if set at link time, else the module version and VCS
// revision recorded by the Go toolchain.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" && !strings.Contains(v, rev[:min(12, len(rev))]) {
		v += " " + rev[:min(12, len(rev))] + modified
	}
	return v
}
