package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/testwait"
)

// needContainerd skips unless the test can run a real containerd.
func needContainerd(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd not installed")
	}
	if _, err := cgroups.Freezer(); err != nil {
		t.Skip("needs cgroup v1: ", err)
	}
}

// testHost is a throwaway host: state dir and cgroup root, cleaned up
// (processes, mounts, cgroups) however the test ends.
func testHost(t testing.TB) Config {
	t.Helper()
	buf := make([]byte, 4)
	rand.Read(buf)
	cfg := Config{
		StateDir:     t.TempDir(),
		CgroupRoot:   "/wharf-test/" + hex.EncodeToString(buf),
		SandboxImage: "registry.wharf.local/wharf/pause:test",
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	t.Cleanup(func() {
		if err := Cleanup(context.Background(), cfg.StateDir, cfg.CgroupRoot); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// The shared parent goes once no other test uses it.
		hs, _ := cgroups.Hierarchies()
		for _, h := range hs {
			os.Remove(filepath.Join(h.Dir, "wharf-test"))
		}
	})
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestStartAdoptRestartStop(t *testing.T) {
	needContainerd(t)
	cfg := testHost(t)
	if err := WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	began := time.Now()
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd start to CRI ready: %v", time.Since(began).Round(time.Millisecond))
	first := d.Pid()
	t.Cleanup(func() { d.Stop(context.Background()) })

	// containerd runs in the host's cgroup in every hierarchy.
	self, _ := os.ReadFile("/proc/" + strconv.Itoa(first) + "/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		if !strings.HasSuffix(line, ":"+cfg.CgroupRoot+"/daemon") {
			t.Errorf("containerd cgroup line %q, want %s/daemon", line, cfg.CgroupRoot)
		}
	}

	// A killed containerd is restarted.
	began = time.Now()
	syscall.Kill(first, syscall.SIGKILL)
	second := waitPid(t, d, first)
	t.Logf("killed containerd back with CRI after %v", time.Since(began).Round(time.Millisecond))
	if _, err := criVersion(context.Background(), d.Socket(), time.Second); err != nil {
		t.Fatalf("CRI after restart: %v", err)
	}

	// The watcher stops with ctx, containerd does not; a new Start adopts it.
	cancel()
	<-d.Done()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	d2, err := Start(ctx2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Pid() != second {
		t.Errorf("adopt: pid %d, want the running %d", d2.Pid(), second)
	}

	// A changed config.toml makes the next Start replace it.
	cancel2()
	<-d2.Done()
	cfg.SandboxImage = "registry.wharf.local/wharf/pause:other"
	if err := WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	d3, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d3.Pid() == second || isContainerd(second, d3.Paths().ConfigFile) {
		t.Errorf("config changed: old containerd %d still in use (new %d)", second, d3.Pid())
	}

	if err := d3.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if isContainerd(d3.Pid(), d3.Paths().ConfigFile) {
		t.Errorf("containerd %d alive after Stop", d3.Pid())
	}
}

// waitPid waits until d runs a containerd other than old that answers CRI.
func waitPid(t *testing.T, d *Daemon, old int) int {
	t.Helper()
	var pid int
	testwait.For(t, fmt.Sprintf("containerd %d replaced by one that answers CRI", old), func() (bool, string) {
		if pid = d.Pid(); pid == old {
			return false, "still the old pid"
		}
		_, err := criVersion(context.Background(), d.Socket(), time.Second)
		return err == nil, fmt.Sprintf("pid %d: %v", pid, err)
	})
	return pid
}

// BenchmarkStartToCRIReady starts a fresh host's containerd per iteration
// and reports the time from exec to CRI Version answering.
func BenchmarkStartToCRIReady(b *testing.B) {
	needContainerd(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cfg := testHost(b)
		cfg.Logger = slog.New(slog.DiscardHandler)
		if err := WriteConfig(cfg); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		d, err := Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Stop(context.Background())
		b.StartTimer()
	}
}

// TestStartWithoutCRIFails: containerd 1.6 with registry mirrors next to
// config_path starts, but without CRI; Start must say so and not leave it
// running.
func TestStartWithoutCRIFails(t *testing.T) {
	needContainerd(t)
	cfg := testHost(t)
	if err := WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	p := PathsFor(cfg.StateDir)
	f, err := os.OpenFile(p.ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://127.0.0.1:1\"]\n")
	f.Close()
	_, err = Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "without the CRI plugin") {
		t.Fatalf("Start with mirrors and config_path: %v, want an error saying CRI is missing", err)
	}
	t.Logf("error: %.300s", err)
	data, _ := os.ReadFile(p.PidFile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); isContainerd(pid, p.ConfigFile) {
		t.Errorf("containerd %d left running without CRI", pid)
	}
}
