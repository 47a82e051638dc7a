// Package bench measures Wharf on this machine and prints the figures:
// scheduler throughput, API latency under concurrent clients, and server
// memory. Each benchmark runs a real server (in this process or as a child
// process) and only reports; nothing here asserts on time.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Env is where a benchmark runs: a work directory for servers' data, the
// wharf binary to start servers from, and a logger.
type Env struct {
	WorkDir string
	Bin     string
	Logger  *slog.Logger
}

// Latencies collects durations safely from many goroutines.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// merge adds o's durations.
func (l *Latencies) merge(o *Latencies) {
	o.mu.Lock()
	d := slices.Clone(o.d)
	o.mu.Unlock()
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// Summary returns "n=… p50=… p99=… max=…".
func (l *Latencies) Summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return "n=0"
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", len(s), round(pct(s, 50)), round(pct(s, 99)), round(s[len(s)-1]))
}

// Percentile returns the p-th percentile.
func (l *Latencies) Percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.d)
	slices.Sort(s)
	return pct(s, p)
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// server is a `wharf server` child process.
type server struct {
	cmd     *exec.Cmd
	dataDir string
	Config  *rest.Config
	Client  kubernetes.Interface
}

// startServer runs the wharf binary at bin as a server on a free port.
func startServer(ctx context.Context, bin, dataDir string, args ...string) (*server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dataDir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"server", "--data-dir", dataDir, "--listen", "127.0.0.1:0"}, args...)...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, dataDir: dataDir}
	// The server prints "wharf server ready" on stderr once it serves.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !signalled && strings.HasPrefix(sc.Text(), "wharf server ready") {
				ready <- nil
				signalled = true
			}
		}
		if !signalled {
			ready <- fmt.Errorf("server exited before it was ready; see %s", logf.Name())
		}
		io.Copy(logf, stderr)
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.Stop()
			return nil, err
		}
	case <-time.After(60 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("server not ready after 60s; see %s", logf.Name())
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		s.Stop()
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, -1
	s.Config = cfg
	s.Client = kubernetes.NewForConfigOrDie(cfg)
	return s, nil
}

// Stop kills the server and waits for it.
func (s *server) Stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// RSS returns the server process's resident memory in bytes.
func (s *server) RSS() (int64, error) { return rssOf(s.cmd.Process.Pid) }

func rssOf(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

// parallel runs f(i) for i in [0,n) on workers goroutines; the first error wins.
func parallel(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
