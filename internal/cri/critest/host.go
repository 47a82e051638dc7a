package critest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/network/podnet"
	"wharf.dev/wharf/internal/wire"
)

// Host is a throwaway host for tests, made the way the local provider makes
// one: its own network namespace, state dir, cgroup subtree, CNI bridge
// network and containerd (registry alias mapped to a Registry), and a CRI
// client. Everything it creates goes when the test ends, failed or not.
type Host struct {
	NetNS      string // /var/run/netns/NAME
	StateDir   string
	CgroupRoot string // /wharf-test/<random>
	PodCIDR    string
	Registry   *Registry
	Config     containerd.Config // as written and started
	Network    *podnet.Server    // the pod network, served in the test process
	Daemon     *containerd.Daemon
	Client     *cri.Client
	// CRIReady is how long containerd took from exec to answering CRI.
	CRIReady time.Duration

	cancel context.CancelFunc
}

// StopWatching stops restarting containerd when it dies (it keeps
// running), as when the host's agent exits.
func (h *Host) StopWatching() {
	h.cancel()
	<-h.Daemon.Done()
}

// SkipUnlessRoot skips a test that needs root and the Debian packages a
// host runs on (containerd, runc, iptables, iproute2).
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"containerd", "runc", "iptables", "ip", "nsenter", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
		t.Skip("needs cgroup v1 with the freezer at /sys/fs/cgroup/freezer")
	}
}

// NewHost starts a host whose containerd pulls from reg. podCIDR may be
// empty (10.250.0.0/24: the host has its own network namespace, so any
// range is free).
func NewHost(t testing.TB, reg *Registry, podCIDR string) *Host {
	t.Helper()
	SkipUnlessRoot(t)
	if podCIDR == "" {
		podCIDR = "10.250.0.0/24"
	}
	buf := make([]byte, 4)
	rand.Read(buf)
	h := &Host{
		NetNS:      NewNetNS(t),
		StateDir:   t.TempDir(),
		CgroupRoot: "/wharf-test/" + hex.EncodeToString(buf),
		PodCIDR:    podCIDR,
		Registry:   reg,
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(func() {
		cancel()
		if h.Client != nil {
			h.Client.Close(context.Background())
		}
		if h.Daemon != nil {
			<-h.Daemon.Done()
		}
		if err := containerd.Cleanup(context.Background(), h.StateDir, h.CgroupRoot); err != nil {
			t.Errorf("cleanup host: %v", err)
		}
		removeSharedCgroupParent()
	})

	h.Config = containerd.Config{
		StateDir:     h.StateDir,
		CgroupRoot:   h.CgroupRoot,
		NetNS:        h.NetNS,
		SandboxImage: reg.Pause,
		Registries:   map[string][]containerd.Endpoint{Alias: {reg.ServeIn(t, h.NetNS)}},
		Logger:       logger,
	}
	h.Config.CNIBinDir = filepath.Join(h.StateDir, "cni", "bin")
	if err := podnet.InstallPlugin(BuildPlugin(t), h.Config.CNIBinDir, true); err != nil {
		t.Fatal(err)
	}
	if err := containerd.WriteConfig(h.Config); err != nil {
		t.Fatal(err)
	}
	// The pod network is served by the test, as an agent would.
	socket := filepath.Join(h.StateDir, "cni", "wharf.sock")
	_, err := cni.WriteConflist(filepath.Join(h.StateDir, wire.CNIConfDir), cni.Options{PodCIDR: podCIDR, Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	h.Network, err = podnet.New(podnet.Config{DataDir: filepath.Join(h.StateDir, "cni", "podnet"), HostNetNS: h.NetNS, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Network.Configure(ctx, podCIDR); err != nil {
		t.Fatal(err)
	}
	ln, err := podnet.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.Network.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("pod network: %v", err)
		}
	})
	// Like a machine with Docker: forwarding dropped unless allowed, and
	// bridged frames go through iptables (bridge-nf-call-iptables is 1
	// in a new namespace too), so pod-to-pod traffic needs AllowForward.
	err = nsrun.At(h.NetNS, func() error {
		if out, err := exec.Command("iptables", "-w", "5", "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
			return fmt.Errorf("FORWARD policy: %w: %s", err, out)
		}
		return cni.AllowForward(ctx, podCIDR)
	})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if h.Daemon, err = containerd.Start(ctx, h.Config); err != nil {
		t.Fatal(err)
	}
	h.CRIReady = time.Since(began)
	if h.Client, err = cri.Dial(ctx, h.Daemon.Socket(), cri.WithLogger(logger)); err != nil {
		t.Fatal(err)
	}
	return h
}

// Env is the conformance environment of the host's CRI client, with every
// feature on.
func (h *Host) Env() *Env {
	return &Env{
		Runtime:      h.Client,
		Images:       h.Client,
		Image:        h.Registry.Busybox,
		LogDir:       filepath.Join(h.StateDir, "logs"),
		CgroupParent: func(uid string) string { return h.CgroupRoot + "/pod" + uid },
		Exec:         true,
		Logs:         true,
		Network: &Network{
			CIDR: netip.MustParsePrefix(h.PodCIDR),
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialIn(ctx, h.NetNS, network, addr)
			},
		},
	}
}

// BuildPlugin builds wharf-cni into the test's temporary directory and
// returns its path.
func BuildPlugin(t testing.TB) string {
	t.Helper()
	plugin := filepath.Join(t.TempDir(), podnet.PluginFile)
	cmd := exec.Command("go", "build", "-o", plugin, "wharf.dev/wharf/cmd/wharf-cni")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build does
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", podnet.PluginFile, err, out)
	}
	return plugin
}

// removeSharedCgroupParent removes /wharf-test in each hierarchy once no
// test uses it any more (rmdir fails while it has children).
func removeSharedCgroupParent() {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/wharf-test")
	for _, d := range dirs {
		os.Remove(d)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
