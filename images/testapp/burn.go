package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"sync"
	"time"
)

// burnSlice is the period of the duty cycle: each burning goroutine spins
// for its share of every slice and sleeps the rest.
const burnSlice = 10 * time.Millisecond

var burnCmd = command{
	name:    "burn",
	summary: "use --cores of CPU (e.g. 0.5) for --for (default: until stopped), then idle until stopped",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		cores := fs.Float64("cores", 1, "CPU to use, in cores")
		burnFor := fs.Duration("for", 0, "how long to burn before idling (0: until stopped)")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			if *cores <= 0 || *cores > 64 {
				return errors.New("--cores must be in (0, 64]")
			}
			fmt.Fprintf(e.stdout, "burning %.3f cores\n", *cores)
			bctx := ctx
			if *burnFor > 0 {
				var cancel context.CancelFunc
				bctx, cancel = context.WithTimeout(ctx, *burnFor)
				defer cancel()
			}
			burn(bctx, *cores)
			if ctx.Err() == nil {
				fmt.Fprintln(e.stdout, "idle")
				<-ctx.Done()
			}
			return nil
		}
	},
}

// burn spins ceil(cores) goroutines, each busy for its share of every
// slice, until ctx ends.
func burn(ctx context.Context, cores float64) {
	n := int(math.Ceil(cores))
	var wg sync.WaitGroup
	for i := range n {
		share := min(cores-float64(i), 1)
		busy := time.Duration(share * float64(burnSlice))
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				for time.Since(start) < busy {
				}
				if rest := burnSlice - time.Since(start); rest > 0 {
					time.Sleep(rest)
				}
			}
		})
	}
	wg.Wait()
}
