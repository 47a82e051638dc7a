package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/bgproc"
	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/pki"
	localprovider "wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/wire"
)

// serviceOptions are the settings of `wharf service run` and `start`.
type serviceOptions struct {
	stateDir        string
	listen          string
	providerNetwork string
	tlsSANs         []string
	noController    bool
}

func (o *serviceOptions) register(cmd *cobra.Command, all bool) {
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", defaultServiceStateDir, "directory for everything the service keeps (server data, hosts, kubeconfig, pid file, log)")
	if !all {
		return
	}
	f.StringVar(&o.listen, "listen", "0.0.0.0:7443", "HTTPS address of the service's API and image registry")
	f.StringVar(&o.providerNetwork, "provider-network", wire.DefaultProviderNetwork, "the local provider's host network; the service has its first address")
	f.StringSliceVar(&o.tlsSANs, "tls-san", nil, "extra host names or IPs for the serving certificate")
	f.BoolVar(&o.noController, "disable-cluster-controller", false, "serve the API only: clusters are stored but not built (tests)")
	f.MarkHidden("disable-cluster-controller")
}

// Where the service keeps things under its state dir (docs/service.md).
func (o *serviceOptions) serverDir() string  { return filepath.Join(o.stateDir, "server") }
func (o *serviceOptions) kubeconfig() string { return filepath.Join(o.stateDir, "admin.kubeconfig") }
func (o *serviceOptions) proc() bgproc.Proc {
	return bgproc.Proc{Name: "service", PidFile: filepath.Join(o.stateDir, "service.pid"), LogFile: filepath.Join(o.stateDir, "service.log")}
}

func newServiceCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Run the cluster service: an API for clusters, and the controller that builds them",
		Long: `The cluster service is a Wharf server that also serves cluster templates,
clusters and node groups (group wharf.dev/v1; kubectl get clusters works
too) and runs the controller that builds each cluster on hosts its
provider makes: 'local' hosts are network namespaces on this machine
(root), 'ssh' hosts are machines that exist.

  wharf service start    in the background (pid file and log in --state-dir)
  wharf service run      in the foreground, for a process supervisor
  wharf service status   pid, URL and health
  wharf service stop     stop it; the clusters' hosts keep running

Layout of --state-dir: server/ (etcd, certificates, registry), hosts/ (the
local provider's hosts), admin.kubeconfig (what 'wharf cluster' uses),
service.pid, service.log.`,
		Example: `  sudo wharf service start
  wharf cluster template create k8s-local --coe kubernetes --provider local
  wharf cluster create demo --template k8s-local --node-count 2 --wait
  sudo wharf service stop`,
	}
	cmd.AddCommand(newServiceRunCmd(g, stdio), newServiceStartCmd(g, stdio), newServiceStopCmd(stdio), newServiceStatusCmd(stdio))
	return cmd
}

func newServiceRunCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	o := &serviceOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the cluster service in the foreground (for systemd and other supervisors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			return runService(cmd.Context(), g, stdio, o)
		},
	}
	o.register(cmd, true)
	return cmd
}

// runService runs the service until ctx ends or it fails.
func runService(ctx context.Context, g *globalFlags, stdio Stdio, o *serviceOptions) error {
	log := g.logger(stdio.Err)
	opts := controlplane.Options{
		Logger: log, DataDir: o.serverDir(), Listen: o.listen, TLSSANs: o.tlsSANs,
		Service: true, ProviderNetwork: o.providerNetwork, HostsDir: filepath.Join(o.stateDir, "hosts"),
	}
	if o.noController {
		log.Warn("no cluster controller: clusters are stored but not built")
	} else {
		opts.ServiceController = runClusterController
	}
	s, err := controlplane.Start(ctx, opts)
	if err != nil {
		return err
	}
	// A copy at the top of the state dir, where the CLI looks; written
	// once the service is ready, so its presence means "started".
	data, err := os.ReadFile(s.AdminKubeconfig)
	if err == nil {
		err = pki.WriteFile(o.kubeconfig(), data, 0o600)
	}
	if err != nil {
		s.Stop()
		return fmt.Errorf("write %s: %w", o.kubeconfig(), err)
	}
	// Run under a supervisor, the pid file lets status and stop find it too.
	if err := os.WriteFile(o.proc().PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		log.Warn("pid file", "err", err)
	}
	pushBuiltinImages(ctx, log, o.kubeconfig())
	fmt.Fprintf(stdio.Err, "wharf service ready at %s\nexport %s=%s\n", s.URL, serviceKubeconfigEnv, o.kubeconfig())
	return s.Wait(ctx)
}

func newServiceStartCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	o := &serviceOptions{}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the cluster service in the background and wait until it is ready",
		Long: `Start 'wharf service run' in the background, with its pid in
<state-dir>/service.pid and its log in <state-dir>/service.log, and return
once it answers /readyz. Running it again while the service runs is harmless.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return startService(cmd.Context(), g, stdio, o)
		},
	}
	o.register(cmd, true)
	return cmd
}

func startService(ctx context.Context, g *globalFlags, stdio Stdio, o *serviceOptions) error {
	abs, err := filepath.Abs(o.stateDir)
	if err != nil {
		return err
	}
	o.stateDir = abs
	p := o.proc()
	if pid := p.Pid(); pid != 0 {
		fmt.Fprintf(stdio.Out, "wharf service already running (pid %d)\n", pid)
		return nil
	}
	// A kubeconfig left by an earlier run would pass for this one's.
	if err := os.Remove(o.kubeconfig()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the wharf binary: %w", err)
	}
	args := []string{"service", "run", "--state-dir", o.stateDir, "--listen", o.listen,
		"--provider-network", o.providerNetwork, "--log-level", g.logLevel}
	for _, san := range o.tlsSANs {
		args = append(args, "--tls-san", san)
	}
	if o.noController {
		args = append(args, "--disable-cluster-controller")
	}
	start := time.Now()
	pid, err := p.Start(bin, args...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "wharf service started (pid %d, log %s)\n", pid, p.LogFile)
	url, err := waitServiceReady(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "service ready at %s in %s\n", url, since(start))
	fmt.Fprintln(stdio.Out)
	if o.kubeconfig() != filepath.Join(defaultServiceStateDir, "admin.kubeconfig") {
		fmt.Fprintf(stdio.Out, "  export %s=%s\n", serviceKubeconfigEnv, o.kubeconfig())
	}
	fmt.Fprintf(stdio.Out, "  wharf cluster template create k8s-local --coe kubernetes --provider local\n  wharf cluster create demo --template k8s-local --wait\n")
	return nil
}

// waitServiceReady waits until the service wrote its kubeconfig and
// answers /readyz; it returns the service's URL.
func waitServiceReady(ctx context.Context, o *serviceOptions) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	last := errors.New("no kubeconfig yet")
	for time.Now().Before(deadline) {
		if o.proc().Pid() == 0 {
			return "", fmt.Errorf("the service exited; its log:\n%s", bgproc.Tail(o.proc().LogFile, 20))
		}
		if url, err := serviceHealth(ctx, o.kubeconfig()); err == nil {
			return url, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			last = err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("the service is not ready after 60s (%v); its log:\n%s", last, bgproc.Tail(o.proc().LogFile, 20))
}

// serviceHealth asks the service of a kubeconfig for /readyz.
func serviceHealth(ctx context.Context, kubeconfig string) (url string, err error) {
	if _, err := os.Stat(kubeconfig); err != nil {
		return "", err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", err
	}
	cfg.Timeout = 2 * time.Second
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return cfg.Host, err
	}
	_, err = c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return cfg.Host, err
}

func newServiceStopCmd(stdio Stdio) *cobra.Command {
	o := &serviceOptions{}
	var purge bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the cluster service; clusters' hosts keep running (--purge: remove the service's every trace)",
		Long: `Stop the cluster service. The clusters' hosts keep running and 'wharf
service start' takes them back. With --purge, once no cluster is left
('wharf cluster list'), the state dir and the provider bridge go too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := o.proc()
			pid := p.Pid()
			if pid == 0 {
				os.Remove(p.PidFile)
				fmt.Fprintln(stdio.Out, "wharf service is not running")
			} else {
				if err := p.Stop(30 * time.Second); err != nil {
					return err
				}
				fmt.Fprintf(stdio.Out, "wharf service stopped (pid %d)\n", pid)
			}
			if !purge {
				fmt.Fprintln(stdio.Out, "the clusters' hosts keep running; wharf service start takes them back")
				return nil
			}
			return purgeService(cmd.Context(), stdio, o)
		},
	}
	o.register(cmd, false)
	cmd.Flags().BoolVar(&purge, "purge", false, "also remove the state dir and the provider bridge (only when no host is left)")
	return cmd
}

// purgeService removes a stopped service's bridge and state dir, refusing
// while hosts of clusters are still there.
func purgeService(ctx context.Context, stdio Stdio, o *serviceOptions) error {
	lp, err := localprovider.New(localprovider.Config{StateDir: filepath.Join(o.stateDir, "hosts"), Network: o.providerNetwork})
	if err != nil {
		return err
	}
	if err := lp.RemoveNetwork(ctx); err != nil {
		return fmt.Errorf("%w: delete the clusters first (start the service, wharf cluster delete NAME --wait)", err)
	}
	if err := os.RemoveAll(o.stateDir); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "purged %s and the provider bridge\n", o.stateDir)
	return nil
}

func newServiceStatusCmd(stdio Stdio) *cobra.Command {
	o := &serviceOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the cluster service runs: pid, URL and health (fails when it does not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pid := o.proc().Pid()
			if pid == 0 {
				return fmt.Errorf("wharf service is not running (no live pid in %s)", o.proc().PidFile)
			}
			health := "ok"
			url, err := serviceHealth(cmd.Context(), o.kubeconfig())
			if err != nil {
				health = "not ready: " + shortErr(err)
			}
			fmt.Fprintf(stdio.Out, "pid:        %d\nurl:        %s\nhealth:     %s\nkubeconfig: %s\nlog:        %s\n",
				pid, url, health, o.kubeconfig(), o.proc().LogFile)
			if err != nil {
				return fmt.Errorf("wharf service (pid %d) is not ready", pid)
			}
			return nil
		},
	}
	o.register(cmd, false)
	return cmd
}

// pushBuiltinImages pushes the images every cluster needs (the pause image
// above all) from images/ next to the wharf binary, where `make build`
// puts them, so that clusters can run pods without a push by hand.
func pushBuiltinImages(ctx context.Context, log *slog.Logger, kubeconfig string) {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	tarballs, _ := filepath.Glob(filepath.Join(filepath.Dir(exe), "images", "*.tar"))
	if len(tarballs) == 0 {
		log.Warn("no built-in images next to the binary: push them with `wharf image push` (make build makes them)")
		return
	}
	r, err := images.RemoteFor(kubeconfig)
	if err == nil {
		err = images.PushFiles(ctx, io.Discard, r, tarballs, "")
	}
	if err != nil {
		log.Warn("pushing the built-in images", "err", err)
	}
}
