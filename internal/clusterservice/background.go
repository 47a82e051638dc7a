package clusterservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/bgproc"
	"wharf.dev/wharf/internal/provider/local"
)

// readyTimeout bounds waiting for a started service to answer.
const readyTimeout = 60 * time.Second

// Start runs `wharf service run` in the background, with its pid and log
// under the state dir, and returns once it answers /readyz (its URL). A
// service already running is left alone.
func Start(ctx context.Context, out io.Writer, o Options) (url string, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return "", err
	}
	p := o.Proc()
	if pid := p.Pid(); pid != 0 {
		fmt.Fprintf(out, "wharf service already running (pid %d)\n", pid)
		return Health(ctx, o.Kubeconfig())
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return "", err
	}
	// A kubeconfig left by an earlier run would pass for this one's.
	if err := os.Remove(o.Kubeconfig()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return "", fmt.Errorf("find the wharf binary: %w", err)
		}
	}
	args := []string{"service", "run", "--state-dir", o.StateDir, "--log-level", o.LogLevel}
	if o.Listen != "" {
		args = append(args, "--listen", o.Listen)
	}
	if o.ProviderNetwork != "" {
		args = append(args, "--provider-network", o.ProviderNetwork)
	}
	for _, san := range o.TLSSANs {
		args = append(args, "--tls-san", san)
	}
	if o.NoController {
		args = append(args, "--disable-cluster-controller")
	}
	pid, err := p.Start(bin, args...)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "wharf service started (pid %d, log %s)\n", pid, p.LogFile)
	return WaitReady(ctx, o)
}

// WaitReady waits until the service wrote its kubeconfig and answers
// /readyz; it returns the service's URL, or why it is not ready with the
// end of its log (at once if the process exited).
func WaitReady(ctx context.Context, o Options) (string, error) {
	o, err := o.withDefaults()
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(readyTimeout)
	last := errors.New("no kubeconfig yet")
	for time.Now().Before(deadline) {
		if o.Proc().Pid() == 0 {
			return "", fmt.Errorf("the service exited; its log:\n%s", bgproc.Tail(o.Proc().LogFile, 20))
		}
		if url, err := Health(ctx, o.Kubeconfig()); err == nil {
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
	return "", fmt.Errorf("the service is not ready after %s (%v); its log:\n%s", readyTimeout, last, bgproc.Tail(o.Proc().LogFile, 20))
}

// Health asks the service of a kubeconfig for /readyz; it returns the
// service's URL.
func Health(ctx context.Context, kubeconfig string) (url string, err error) {
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

// Stop stops the service's process (SIGTERM, then SIGKILL after grace);
// the clusters' hosts keep running. It returns the pid it stopped, 0 if
// none ran.
func Stop(o Options, grace time.Duration) (int, error) {
	o, err := o.withDefaults()
	if err != nil {
		return 0, err
	}
	p := o.Proc()
	pid := p.Pid()
	if pid == 0 {
		os.Remove(p.PidFile)
		return 0, nil
	}
	return pid, p.Stop(grace)
}

// Status is what `wharf service status` shows.
type Status struct {
	PID        int
	URL        string
	Health     error
	Kubeconfig string
	Log        string
	// Network is the provider network the service claimed ("": none yet).
	Network string
}

// GetStatus reports whether the service runs and answers.
func GetStatus(ctx context.Context, o Options) (Status, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Status{}, err
	}
	st := Status{PID: o.Proc().Pid(), Kubeconfig: o.Kubeconfig(), Log: o.Proc().LogFile}
	if n, err := local.ReadNetwork(o.networkFile()); err == nil {
		st.Network = n.CIDR + " on bridge " + n.Bridge
	}
	if st.PID == 0 {
		return st, fmt.Errorf("wharf service is not running (no live pid in %s)", o.Proc().PidFile)
	}
	st.URL, st.Health = Health(ctx, o.Kubeconfig())
	return st, nil
}

// DefaultKubeconfig is the kubeconfig of a service in DefaultStateDir.
func DefaultKubeconfig() string { return filepath.Join(DefaultStateDir, "admin.kubeconfig") }
