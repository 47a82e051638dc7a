package hostctl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/testwait"
)

// TestMain lets the test binary stand in for wharf: copied to a host's
// bin/wharf it runs `hostctl …` as wharf does, and `sleeper`, the host's
// process in these tests (it notes each start and SIGTERM in its dir).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "hostctl":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			err := Main(ctx, os.Args[2:], os.Stderr)
			stop()
			if err != nil {
				fmt.Fprintln(os.Stderr, "hostctl:", err)
				os.Exit(1)
			}
			os.Exit(0)
		case "sleeper":
			note := func(s string) {
				f, _ := os.OpenFile(filepath.Join(os.Args[2], "events"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				fmt.Fprintln(f, s, os.Getpid())
				f.Close()
			}
			note("start")
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
			<-ctx.Done()
			stop()
			note("term")
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (cgroups)")
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
		t.Skip("needs the cgroup v1 freezer")
	}
}

// testHost makes a host directory whose binary is this test binary and
// whose process is the sleeper; its cgroups go however the test ends.
func testHost(t *testing.T, cfg Config) Paths {
	t.Helper()
	p := Paths{Dir: filepath.Join(t.TempDir(), "key", "host")}
	if err := os.MkdirAll(filepath.Dir(p.Binary()), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, p.Binary())
	b := make([]byte, 4)
	rand.Read(b)
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/wharf-hostctl-test/" + hex.EncodeToString(b) + "/host"
	}
	if cfg.Args == nil {
		cfg.Args = []string{"sleeper", p.Dir}
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(p.Config(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Cleanup(context.Background(), p.Dir, cfg.CgroupRoot); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, func() (bool, string) { return cond(), "not yet" })
}

func events(p Paths) []string {
	data, _ := os.ReadFile(filepath.Join(p.Dir, "events"))
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// cgroupOf returns pid's cgroup in the hierarchy of controller.
func cgroupOf(pid int, controller string) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && f[1] == controller {
			return f[2]
		}
	}
	return ""
}

func TestSuperviseLifecycle(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	cfg := Config{}
	p := testHost(t, cfg)
	cfg, _ = ReadConfig(p.Dir)

	if err := Detach(ctx, p.Dir); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	sup, child := supervisorPid(p), childPid(p)
	if sup == 0 || child == 0 || parentOf(child) != sup {
		t.Fatalf("after Detach: supervisor %d, child %d (parent %d)", sup, child, parentOf(child))
	}
	if got, want := cgroupOf(child, "freezer"), cfg.CgroupRoot+"/wharf"; got != want {
		t.Errorf("child in freezer cgroup %q, want %q", got, want)
	}
	if err := Detach(ctx, p.Dir); err != nil || supervisorPid(p) != sup || childPid(p) != child {
		t.Errorf("Detach again: %v; supervisor %d (was %d), child %d (was %d)", err, supervisorPid(p), sup, childPid(p), child)
	}

	// A crash: the supervisor starts the process again.
	waitFor(t, "the process to start", func() bool { return len(events(p)) == 1 })
	syscall.Kill(child, syscall.SIGKILL)
	waitFor(t, "a restarted process", func() bool { c := childPid(p); return c > 0 && c != child && len(events(p)) == 2 })

	// Stop is graceful: the process gets SIGTERM, nothing restarts it.
	if err := Stop(ctx, p.Dir); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if Running(p.Dir) || supervisorPid(p) != 0 {
		t.Fatalf("after Stop: running %v, supervisor %d", Running(p.Dir), supervisorPid(p))
	}
	if ev := strings.Join(events(p), " "); ev != "start start term" {
		t.Errorf("events %q, want %q", ev, "start start term")
	}

	// PowerOff kills everything at once, including the supervisor.
	if err := Detach(ctx, p.Dir); err != nil {
		t.Fatalf("Detach after Stop: %v", err)
	}
	sup = supervisorPid(p)
	if err := PowerOff(ctx, p.Dir, cfg.CgroupRoot); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	if Running(p.Dir) || supervisorPid(p) != 0 {
		t.Fatalf("after PowerOff: running %v, supervisor %d", Running(p.Dir), supervisorPid(p))
	}
	// Detach's goroutine reaps it (in wharf, Detach's process is gone and
	// init does).
	waitFor(t, "the supervisor to be reaped", func() bool { return syscall.Kill(sup, 0) != nil })
	if _, err := os.Stat(p.Config()); err != nil {
		t.Errorf("PowerOff removed the host's files: %v", err)
	}

	if err := Detach(ctx, p.Dir); err != nil {
		t.Fatalf("Detach after PowerOff: %v", err)
	}
	if err := Cleanup(ctx, p.Dir, cfg.CgroupRoot); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := os.Stat(p.Dir); !os.IsNotExist(err) {
		t.Errorf("host dir after Cleanup: %v", err)
	}
	hs, _ := cgroups.Hierarchies()
	for _, h := range hs {
		// The test's parent (/wharf-hostctl-test/<id>) goes too: it is empty.
		if _, err := os.Stat(filepath.Join(h.Dir, filepath.Dir(cfg.CgroupRoot))); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left in %s", filepath.Dir(cfg.CgroupRoot), h.Dir)
		}
	}
}

func TestSuperviseLimits(t *testing.T) {
	needRoot(t)
	p := testHost(t, Config{CPU: "500m", Memory: "64Mi"})
	cfg, _ := ReadConfig(p.Dir)
	if err := Detach(context.Background(), p.Dir); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	for file, want := range map[string]string{
		"cpu/" + cfg.CgroupRoot + "/cpu.cfs_quota_us":         "50000",
		"memory/" + cfg.CgroupRoot + "/memory.limit_in_bytes": "67108864",
	} {
		data, err := os.ReadFile("/sys/fs/cgroup/" + file)
		if got := strings.TrimSpace(string(data)); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", file, got, err, want)
		}
	}
}

func TestDetachFailsWithLog(t *testing.T) {
	needRoot(t)
	p := testHost(t, Config{})
	os.Remove(p.Config())
	err := Detach(context.Background(), p.Dir)
	if err == nil || !strings.Contains(err.Error(), "host.json") {
		t.Fatalf("Detach without host.json: %v, want an error naming host.json", err)
	}
}

func TestParentOf(t *testing.T) {
	if got := parentOf(os.Getpid()); got != os.Getppid() {
		t.Errorf("parentOf(self) = %d, want %d", got, os.Getppid())
	}
}
