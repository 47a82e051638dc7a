// Command testapp is the one binary of the test image: small servers and
// clients that exercise a cluster (HTTP, TCP and UDP echo, DNS, exit codes),
// in the spirit of Kubernetes' agnhost. Each subcommand lives in its own
// file; `testapp --help` lists them with their flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// env is what a command may touch outside its arguments, so tests can
// run commands without the real process's streams and environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// A command defines its flags on a FlagSet and returns its body, which
// runs with the arguments left after the flags.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string
	define  func(fs *flag.FlagSet, e env) func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{serveCmd, exitCmd, tcpEchoCmd, udpEchoCmd, dnsLookupCmd, clientCmd, sleepCmd, listPodsCmd, burnCmd}
}

// exitCode is an error that ends the process with a chosen status.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func main() {
	// Handling SIGTERM matters: as PID 1 of a container the process would
	// otherwise ignore it and wait for the grace period to run out.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// run runs one command and returns the process's exit status.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		body := c.define(fs, e)
		fs.Usage = func() { commandUsage(e.stderr, c, fs) }
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		err := body(ctx, fs.Args())
		var code exitCode
		switch {
		case err == nil:
			return 0
		case errors.As(err, &code):
			return int(code)
		default:
			fmt.Fprintf(e.stderr, "testapp %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "testapp: unknown command %q (testapp --help lists them)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `testapp: small servers and clients for testing a cluster.

Usage: testapp COMMAND [FLAGS] [ARGS]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nSIGTERM and SIGINT end every command with status 0 (exit: with its code).")
	for _, c := range commands() {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.define(fs, env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
		fmt.Fprintln(w)
		commandUsage(w, c, fs)
	}
}

func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "testapp %s\n  %s\n", strings.TrimSpace(c.name+" [flags] "+c.args), c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
}
