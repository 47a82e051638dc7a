package cli

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/bench"
)

func newBenchCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: scheduler throughput, API latency, server memory",
		Long: `Run a benchmark against a real server started for it and print the figures.
Nothing is asserted: the numbers are for docs/benchmarks.md and for comparing runs.`,
	}
	var dir, cpuProfile string
	cmd.PersistentFlags().StringVar(&dir, "work-dir", "", "where servers keep their data (default: a new temporary directory, removed afterwards)")
	cmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process to the file")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		return pprof.StartCPUProfile(f)
	}
	cmd.PersistentPostRun = func(*cobra.Command, []string) { pprof.StopCPUProfile() }
	workDir := func() (string, func(), error) {
		if dir != "" {
			return dir, func() {}, os.MkdirAll(dir, 0o700)
		}
		d, err := os.MkdirTemp("", "wharf-bench")
		return d, func() { os.RemoveAll(d) }, err
	}

	sc := bench.SchedulerConfig{}
	schedCmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Pods bound per second with many nodes and pending pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, cleanup, err := workDir()
			if err != nil {
				return err
			}
			defer cleanup()
			sc.Logger = g.logger(stdio.Err)
			tuneGC() // the server runs in this process: tune it as `wharf server` is
			sc.DataDir = filepath.Join(d, "scheduler")
			return bench.Scheduler(cmd.Context(), stdio.Out, sc)
		},
	}
	schedCmd.Flags().IntVar(&sc.Nodes, "nodes", 1000, "registered nodes")
	schedCmd.Flags().IntVar(&sc.Pods, "pods", 10000, "pending pods")
	cmd.AddCommand(schedCmd)

	ac := bench.APIConfig{}
	apiCmd := &cobra.Command{
		Use:   "api",
		Short: "API latency (create, get, list, watch delay) under concurrent clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, cleanup, err := workDir()
			if err != nil {
				return err
			}
			defer cleanup()
			g.logger(stdio.Err)
			if ac.Bin, err = os.Executable(); err != nil {
				return err
			}
			ac.WorkDir = d
			return bench.API(cmd.Context(), stdio.Out, ac)
		},
	}
	apiCmd.Flags().IntVar(&ac.Clients, "clients", 20, "concurrent clients")
	apiCmd.Flags().DurationVar(&ac.Duration, "duration", 20*time.Second, "how long the clients run")
	apiCmd.Flags().IntVar(&ac.ListSize, "list-size", 1000, "pods in the listed namespace")
	cmd.AddCommand(apiCmd)

	rc := bench.RSSConfig{}
	rssCmd := &cobra.Command{
		Use:   "rss",
		Short: "Server memory idle and holding many pods on simulated nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, cleanup, err := workDir()
			if err != nil {
				return err
			}
			defer cleanup()
			rc.Logger = g.logger(stdio.Err)
			if rc.Bin, err = os.Executable(); err != nil {
				return err
			}
			rc.WorkDir = d
			return bench.RSS(cmd.Context(), stdio.Out, rc)
		},
	}
	rssCmd.Flags().IntVar(&rc.Pods, "pods", 10000, "pods to hold")
	rssCmd.Flags().IntVar(&rc.Nodes, "nodes", 100, "simulated nodes")
	cmd.AddCommand(rssCmd)
	return cmd
}
