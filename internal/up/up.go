// Package up runs a whole Wharf cluster on this machine: `wharf up`
// starts the server and an agent (which starts containerd) as background
// processes with pid files and logs under a state directory, and `wharf
// down` stops them and, with --purge, removes every trace.
package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/bgproc"
	"wharf.dev/wharf/internal/images"
)

// Options describe the cluster on this machine. What is left empty is
// taken from the state dir's cluster.json, where the first `wharf up`
// records its choices, or else chosen free on this machine (claim.go).
type Options struct {
	// StateDir holds everything: server data, the node's state, pid files, logs.
	StateDir string
	// Listen is the server's address (default 127.0.0.1:6443 if free,
	// else a free port of 127.0.0.1).
	Listen string
	// NodeName defaults to the host name; NodeIP to the agent's detection.
	NodeName, NodeIP string
	// AgentListen is the agent's HTTPS address for logs and exec (default
	// 0.0.0.0:10250 if free, else a free port).
	AgentListen string
	// IngressHTTP and IngressHTTPS are the ingress proxy's addresses
	// (default: the first run's, else 0.0.0.0:80 and :443 if free, else
	// free ports).
	IngressHTTP, IngressHTTPS string
	// ClusterCIDR and ServiceCIDR are the pods' and services' ranges
	// (default 10.244.0.0/16 and 10.96.0.0/12 if free, else free /16s);
	// one that anything else on the machine holds is refused.
	ClusterCIDR, ServiceCIDR string
	// LoadBalancerCIDR is where LoadBalancer services' addresses come
	// from (default: a free /28 of 10.200.0.0/16); they answer on this
	// machine only.
	LoadBalancerCIDR string
	// ResolvConf is the resolver configuration pods with dnsPolicy
	// Default get (the agent's --resolv-conf); "": no nameserver.
	ResolvConf string
	// ImagesDir holds the built-in image tarballs to push (default: images/
	// next to the wharf binary, where `make build` puts them).
	ImagesDir string
	// Binary is the wharf executable to run (default: this one).
	Binary string
}

func (o Options) withDefaults() (Options, error) {
	if o.StateDir == "" {
		return o, errors.New("a state dir is required")
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return o, err
	}
	o.StateDir = abs
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return o, err
		}
	}
	if o.ImagesDir == "" {
		o.ImagesDir = filepath.Join(filepath.Dir(o.Binary), "images")
	}
	return o, nil
}

// layout names the files of a cluster under its state dir.
type layout struct {
	serverDir, nodeDir string
	server, agent      bgproc.Proc
}

func layoutOf(o Options) layout {
	run, log := filepath.Join(o.StateDir, "run"), filepath.Join(o.StateDir, "log")
	return layout{
		serverDir: filepath.Join(o.StateDir, "server"),
		nodeDir:   filepath.Join(o.StateDir, "node"),
		server:    bgproc.Proc{Name: "server", PidFile: filepath.Join(run, "server.pid"), LogFile: filepath.Join(log, "server.log")},
		agent:     bgproc.Proc{Name: "agent", PidFile: filepath.Join(run, "agent.pid"), LogFile: filepath.Join(log, "agent.log")},
	}
}

func (l layout) kubeconfig() string { return filepath.Join(l.serverDir, "admin.kubeconfig") }

// Up brings the cluster up, or checks that it is and starts what is missing.
// It returns once the node is Ready.
func Up(ctx context.Context, out io.Writer, o Options) error {
	start := time.Now()
	if err := preflight(); err != nil {
		return err
	}
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	l := layoutOf(o)
	c, err := claim(ctx, o)
	if err != nil {
		return err
	}
	tarballs, err := filepath.Glob(filepath.Join(o.ImagesDir, "*.tar"))
	if err != nil || len(tarballs) == 0 {
		return fmt.Errorf("no image tarballs in %s: build them with `make build` (or `wharf image build --out %s`)", o.ImagesDir, o.ImagesDir)
	}

	if pid := l.server.Pid(); pid != 0 {
		fmt.Fprintf(out, "server already running (pid %d)\n", pid)
	} else {
		if _, err := l.server.Start(o.Binary, "server", "--data-dir", l.serverDir, "--listen", c.Listen,
			"--cluster-cidr", c.ClusterCIDR, "--service-cidr", c.ServiceCIDR, "--lb-cidr", c.LoadBalancerCIDR); err != nil {
			return err
		}
		fmt.Fprintf(out, "server started (log %s)\n", l.server.LogFile)
	}
	client, err := waitServer(ctx, l)
	if err != nil {
		return err
	}

	remote, err := images.RemoteFor(l.kubeconfig())
	if err != nil {
		return err
	}
	if err := images.PushFiles(ctx, io.Discard, remote, tarballs, ""); err != nil {
		return fmt.Errorf("push the built-in images: %w", err)
	}
	fmt.Fprintf(out, "images pushed: %s\n", strings.Join(baseNames(tarballs), ", "))

	if pid := l.agent.Pid(); pid != 0 {
		fmt.Fprintf(out, "agent already running (pid %d)\n", pid)
	} else {
		cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig())
		if err != nil {
			return err
		}
		args := []string{"agent", "--server", cfg.Host, "--token-file", filepath.Join(l.serverDir, "join-token"),
			"--state-dir", l.nodeDir, "--node-name", c.NodeName, "--cgroup-root", c.CgroupRoot,
			"--listen", c.AgentListen, "--cluster-cidr", c.ClusterCIDR, "--service-cidr", c.ServiceCIDR,
			"--cni-bridge", c.Bridge, "--resolv-conf=" + o.ResolvConf, "--lb-local",
			"--ingress-http", c.IngressHTTP, "--ingress-https", c.IngressHTTPS}
		if o.NodeIP != "" {
			args = append(args, "--node-ip", o.NodeIP)
		}
		if _, err := l.agent.Start(o.Binary, args...); err != nil {
			return err
		}
		fmt.Fprintf(out, "agent started (log %s)\n", l.agent.LogFile)
	}
	if err := waitNodeReady(ctx, client, c.NodeName, l); err != nil {
		return err
	}
	fmt.Fprintf(out, "node %s Ready; cluster up in %s\n", c.NodeName, time.Since(start).Round(10*time.Millisecond))
	fmt.Fprintf(out, "ingress on http %s, https %s; load balancer addresses from %s\n\n", c.IngressHTTP, c.IngressHTTPS, c.LoadBalancerCIDR)
	fmt.Fprintf(out, "  export KUBECONFIG=%s\n  kubectl get nodes -o wide\n  kubectl apply -f examples/hello/\n  wharf down --state-dir %s [--purge]\n", l.kubeconfig(), o.StateDir)
	return nil
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimSuffix(filepath.Base(p), ".tar")
	}
	return out
}

// waitServer waits until the server answers /readyz with its kubeconfig.
func waitServer(ctx context.Context, l layout) (kubernetes.Interface, error) {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if l.server.Pid() == 0 {
			return nil, fmt.Errorf("the server exited; its log:\n%s", bgproc.Tail(l.server.LogFile, 20))
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig())
		if err == nil {
			cfg.Timeout = 2 * time.Second
			var c *kubernetes.Clientset
			if c, err = kubernetes.NewForConfig(cfg); err == nil {
				if _, err = c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err == nil {
					cfg.Timeout = 0
					return kubernetes.NewForConfig(cfg)
				}
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("the server is not ready after 60s (%v); its log:\n%s", last, bgproc.Tail(l.server.LogFile, 20))
}

// waitNodeReady polls the node until its Ready condition is True.
func waitNodeReady(ctx context.Context, c kubernetes.Interface, name string, l layout) error {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil && nodeReady(n) {
			return nil
		}
		if l.agent.Pid() == 0 {
			return fmt.Errorf("the agent exited; its log:\n%s", bgproc.Tail(l.agent.LogFile, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("node %s not Ready after 90s; the agent's log:\n%s", name, bgproc.Tail(l.agent.LogFile, 20))
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
