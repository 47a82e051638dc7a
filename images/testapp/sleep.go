package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"
)

var sleepCmd = command{
	name:    "sleep",
	args:    "[DURATION]",
	summary: "sleep for DURATION (e.g. 30s, or 30 for seconds), forever without one",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			d, err := sleepArgs(args)
			if err != nil {
				return err
			}
			if d < 0 {
				<-ctx.Done()
				return nil
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			return nil
		}
	},
}

// sleepArgs parses the duration; -1 means forever.
func sleepArgs(args []string) (time.Duration, error) {
	switch len(args) {
	case 0:
		return -1, nil
	case 1:
		if n, err := strconv.ParseFloat(args[0], 64); err == nil && n >= 0 {
			return time.Duration(n * float64(time.Second)), nil
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d < 0 {
			return 0, fmt.Errorf("duration %q: want e.g. 30s or 30", args[0])
		}
		return d, nil
	default:
		return 0, fmt.Errorf("want at most one DURATION, got %q", args)
	}
}
