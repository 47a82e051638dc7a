package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

var exitCmd = command{
	name:    "exit",
	args:    "[CODE]",
	summary: "exit with a status (--code N or CODE), optionally --after a delay; SIGTERM cuts the delay short",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		code := fs.Int("code", 0, "exit status, 0 to 255")
		after := fs.Duration("after", 0, "wait this long first, e.g. 2s")
		return func(ctx context.Context, args []string) error {
			n, err := exitArgs(*code, args)
			if err != nil {
				return err
			}
			if *after > 0 {
				t := time.NewTimer(*after)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
			fmt.Fprintf(e.stdout, "exiting with status %d\n", n)
			return exitCode(n)
		}
	},
}

// exitArgs picks the status from --code or a positional CODE.
func exitArgs(code int, args []string) (int, error) {
	switch len(args) {
	case 0:
		if code < 0 || code > 255 {
			return 0, fmt.Errorf("--code %d: want 0 to 255", code)
		}
		return code, nil
	case 1:
		return parseExitCode(args[0])
	default:
		return 0, fmt.Errorf("want at most one CODE, got %q", args)
	}
}
