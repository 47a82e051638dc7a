package cli

import (
	"context"
	"os"
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

	// run wraps a benchmark: its work directory, the binary servers run
	// from, the logger and the optional profile.
	run := func(f func(context.Context, bench.Env) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			env := bench.Env{WorkDir: dir, Logger: g.logger(stdio.Err)}
			if env.WorkDir == "" {
				d, err := os.MkdirTemp("", "wharf-bench")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				env.WorkDir = d
			} else if err := os.MkdirAll(env.WorkDir, 0o700); err != nil {
				return err
			}
			var err error
			if env.Bin, err = os.Executable(); err != nil {
				return err
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			return f(cmd.Context(), env)
		}
	}

	// sub is a benchmark's subcommand: no arguments, f run by run.
	sub := func(use, short string, f func(context.Context, bench.Env) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: run(f)}
	}

	sc := bench.SchedulerConfig{}
	schedCmd := sub("scheduler", "Pods bound per second with many nodes and pending pods",
		func(ctx context.Context, env bench.Env) error {
			tuneGC() // the server runs in this process: tune it as `wharf server` is
			return bench.Scheduler(ctx, env, stdio.Out, sc)
		})
	schedCmd.Flags().IntVar(&sc.Nodes, "nodes", 1000, "registered nodes")
	schedCmd.Flags().IntVar(&sc.Pods, "pods", 10000, "pending pods")

	ac := bench.APIConfig{}
	apiCmd := sub("api", "API latency (create, get, list, watch delay) under concurrent clients",
		func(ctx context.Context, env bench.Env) error { return bench.API(ctx, env, stdio.Out, ac) })
	apiCmd.Flags().IntVar(&ac.Clients, "clients", 20, "concurrent clients")
	apiCmd.Flags().DurationVar(&ac.Duration, "duration", 20*time.Second, "how long the clients run")
	apiCmd.Flags().IntVar(&ac.ListSize, "list-size", 1000, "pods in the listed namespace")

	xc := bench.APIExtConfig{}
	apiextCmd := sub("apiext", "RBAC cost on pod creates, server-side apply vs update, many custom objects: each beside its baseline",
		func(ctx context.Context, env bench.Env) error { return bench.APIExt(ctx, env, stdio.Out, xc) })
	xf := apiextCmd.Flags()
	xf.IntVar(&xc.Clients, "clients", 10, "concurrent clients creating pods and custom objects")
	xf.DurationVar(&xc.Duration, "duration", 5*time.Second, "each round of pod creates (per server)")
	xf.IntVar(&xc.Rounds, "rounds", 3, "rounds of pod creates per server, alternating between the servers")
	xf.IntVar(&xc.Roles, "roles", 1000, "extra Roles and as many RoleBindings, for other users")
	xf.IntVar(&xc.ClusterBindings, "cluster-bindings", 100, "extra ClusterRoleBindings, for other users")
	xf.IntVar(&xc.Writes, "writes", 500, "applies, and as many updates, of the ConfigMap")
	xf.IntVar(&xc.Fields, "fields", 100, "data keys of the applied and updated ConfigMap")
	xf.IntVar(&xc.Objects, "objects", 10000, "custom objects created and listed")
	xf.IntVar(&xc.Lists, "lists", 20, "lists of all the custom objects")

	rc := bench.RSSConfig{}
	rssCmd := sub("rss", "Server memory idle and holding many pods on simulated nodes",
		func(ctx context.Context, env bench.Env) error { return bench.RSS(ctx, env, stdio.Out, rc) })
	rssCmd.Flags().IntVar(&rc.Pods, "pods", 10000, "pods to hold")
	rssCmd.Flags().IntVar(&rc.Nodes, "nodes", 100, "simulated nodes")

	uc := bench.UpConfig{}
	upCmd := sub("up", "Time `wharf up` from nothing to the node Ready (root, containerd)",
		func(ctx context.Context, env bench.Env) error { return bench.Up(ctx, env, stdio.Out, uc) })
	upCmd.Flags().IntVar(&uc.Runs, "runs", 5, "how many times")

	pc := bench.PodsConfig{}
	podsCmd := sub("pods", "Pod startup latency, crash-to-restart time and agent memory on this machine (root, containerd)",
		func(ctx context.Context, env bench.Env) error { return bench.Pods(ctx, env, stdio.Out, pc) })
	podsCmd.Flags().IntVar(&pc.Pods, "pods", 100, "pods to start")
	podsCmd.Flags().IntVar(&pc.Batch, "batch", 10, "pods created at a time")
	podsCmd.Flags().IntVar(&pc.Crashes, "crashes", 10, "containers crashed (each once)")
	podsCmd.Flags().IntVar(&pc.RSSPods, "rss-pods", 30, "pods running when the agent's memory is read")

	cc := bench.ClusterConfig{}
	clusterCmd := sub("cluster", "Cluster service: create time, first pod, memory, power cut recovery, nodes under CPU saturation (root)",
		func(ctx context.Context, env bench.Env) error { return bench.Cluster(ctx, env, stdio.Out, cc) })
	clusterCmd.Flags().IntVar(&cc.Runs, "runs", 3, "clusters created per size")
	clusterCmd.Flags().IntVar(&cc.BigNodes, "big-nodes", 10, "worker nodes of the larger cluster")
	clusterCmd.Flags().IntVar(&cc.PowerCuts, "power-cuts", 5, "power cuts measured")
	clusterCmd.Flags().DurationVar(&cc.Saturate, "saturate", 30*time.Second, "how long to saturate the CPUs while watching nodes (0: skip)")

	hc := bench.HAConfig{}
	haCmd := sub("ha", "Clusters of several masters: 3+3 create, write throughput 3 vs 1 masters, etcd leader power cut, quorum recovery (root)",
		func(ctx context.Context, env bench.Env) error { return bench.HA(ctx, env, stdio.Out, hc) })
	haCmd.Flags().IntVar(&hc.Runs, "runs", 3, "3+3 clusters created")
	haCmd.Flags().IntVar(&hc.Writers, "writers", 8, "concurrent writers in the throughput runs")
	haCmd.Flags().DurationVar(&hc.Load, "load", 5*time.Second, "each throughput run")

	svc := bench.ServicesConfig{}
	svcCmd := sub("services", "Service proxy and DNS on this machine's node: cluster IP vs pod IP, change propagation, memory, DNS QPS (root)",
		func(ctx context.Context, env bench.Env) error { return bench.Services(ctx, env, stdio.Out, svc) })
	svcCmd.Flags().IntVar(&svc.Services, "services", 1000, "services loaded for memory and change time at size")
	svcCmd.Flags().IntVar(&svc.Endpoints, "endpoints", 10, "endpoints of each loaded service")
	svcCmd.Flags().IntVar(&svc.Conns, "conns", 8, "concurrent HTTP clients")
	svcCmd.Flags().DurationVar(&svc.Duration, "duration", 3*time.Second, "each load round (3 rounds per target, alternating)")
	svcCmd.Flags().IntVar(&svc.Changes, "changes", 20, "endpoint and DNS changes timed")

	ing := bench.IngressConfig{}
	ingCmd := sub("ingress", "Ingress proxy against nginx as the same reverse proxy, wrk as the client: HTTP and HTTPS keep-alive (root)",
		func(ctx context.Context, env bench.Env) error { return bench.Ingress(ctx, env, stdio.Out, ing) })
	ingCmd.Flags().IntVar(&ing.Conns, "conns", 32, "wrk connections")
	ingCmd.Flags().IntVar(&ing.Threads, "threads", 2, "wrk threads")
	ingCmd.Flags().DurationVar(&ing.Duration, "duration", 5*time.Second, "each wrk run")
	ingCmd.Flags().IntVar(&ing.Rounds, "rounds", 3, "rounds per proxy and scheme, alternating")
	jc := bench.JobsConfig{}
	jobsCmd := sub("jobs", "Job controller: a Job of many completions on simulated nodes, creation to Complete",
		func(ctx context.Context, env bench.Env) error { return bench.Jobs(ctx, env, stdio.Out, jc) })
	jobsCmd.Flags().IntVar(&jc.Completions, "completions", 100, "completions of the Job")
	jobsCmd.Flags().IntVar(&jc.Parallelism, "parallelism", 10, "parallelism of the Job")
	jobsCmd.Flags().IntVar(&jc.Nodes, "nodes", 3, "simulated nodes")
	jobsCmd.Flags().IntVar(&jc.Runs, "runs", 3, "Jobs run one after the other")
	vc := bench.VolumesConfig{}
	vbc := bench.VolumeBindingConfig{}
	vbCmd := sub("volumebinding", "PersistentVolume controller: claims on a pool of static volumes, create to Bound",
		func(ctx context.Context, env bench.Env) error { return bench.VolumeBinding(ctx, env, stdio.Out, vbc) })
	vbCmd.Flags().IntVar(&vbc.Claims, "claims", 100, "claims made one by one, then as many at once")
	volCmd := sub("volumes", "fio on a wharf.dev/local volume against the host directory it lives in (root, fio)",
		func(ctx context.Context, env bench.Env) error { return bench.Volumes(ctx, env, stdio.Out, vc) })
	volCmd.Flags().Int64Var(&vc.Size, "size", 2<<30, "volume size in bytes (fio's file is half)")
	volCmd.Flags().DurationVar(&vc.Runtime, "runtime", 5*time.Second, "each fio run")
	volCmd.Flags().IntVar(&vc.Rounds, "rounds", 3, "rounds per pattern and target, alternating")
	dc := bench.DaemonSetConfig{}
	dsCmd := sub("daemonset", "DaemonSet controller on simulated nodes: node created to its pod Running, a rolling update across every node",
		func(ctx context.Context, env bench.Env) error { return bench.DaemonSet(ctx, env, stdio.Out, dc) })
	dsCmd.Flags().IntVar(&dc.Nodes, "nodes", 50, "simulated nodes running the DaemonSet from the start")
	dsCmd.Flags().IntVar(&dc.NewNodes, "new-nodes", 30, "nodes added one at a time, each timed to its pod Running")
	dsCmd.Flags().StringVar(&dc.MaxUnavailable, "max-unavailable", "1", "the rolling update's maxUnavailable (integer or percentage)")
	stc := bench.StatefulSetConfig{}
	stsCmd := sub("statefulset", "StatefulSet controller: a set of 10 replicas on simulated nodes, creation to all Ready, OrderedReady and Parallel",
		func(ctx context.Context, env bench.Env) error { return bench.StatefulSet(ctx, env, stdio.Out, stc) })
	stsCmd.Flags().IntVar(&stc.Replicas, "replicas", 10, "replicas of the StatefulSet")
	stsCmd.Flags().IntVar(&stc.Nodes, "nodes", 3, "simulated nodes")
	stsCmd.Flags().IntVar(&stc.Runs, "runs", 3, "sets created one after the other, per policy")
	bkc := bench.BackupConfig{}
	bkCmd := sub("backup", "etcd backup over HTTPS and restore (--restore-from to server ready) of a server holding 10,000 objects",
		func(ctx context.Context, env bench.Env) error { return bench.Backup(ctx, env, stdio.Out, bkc) })
	bkCmd.Flags().IntVar(&bkc.Objects, "objects", 10000, "ConfigMaps of 1 KiB in the server")
	bkCmd.Flags().IntVar(&bkc.Runs, "runs", 3, "backups and restores, one after the other")

	fc := bench.FailoverConfig{}
	failoverCmd := sub("failover-controllers", "Servers on one etcd: kill -9 of the controllers' leader to the first controller action by the next",
		func(ctx context.Context, env bench.Env) error {
			return bench.FailoverControllers(ctx, env, stdio.Out, fc)
		})
	failoverCmd.Flags().IntVar(&fc.Servers, "servers", 3, "servers sharing one etcd")
	failoverCmd.Flags().IntVar(&fc.Runs, "runs", 5, "power cuts measured")

	cmd.AddCommand(schedCmd, apiCmd, apiextCmd, rssCmd, upCmd, podsCmd, clusterCmd, haCmd, svcCmd, ingCmd, jobsCmd, volCmd, vbCmd, dsCmd, stsCmd, bkCmd, failoverCmd)
	return cmd
}
