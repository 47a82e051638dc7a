package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// startTimeout bounds one start: containerd answers CRI in about 0.1 s
// here, so this only catches a daemon that is stuck.
const startTimeout = 30 * time.Second

// Daemon is a host's running containerd, started or adopted by Start and
// watched while Start's ctx lives.
type Daemon struct {
	cfg   Config
	paths Paths
	log   *slog.Logger

	mu     sync.Mutex
	pid    int
	exited <-chan struct{} // closed when pid is gone

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop: no more restarts
	done     chan struct{} // closed when the watcher has returned
}

// Start adopts the containerd recorded in the state dir if it is alive,
// answers CRI and was started with the current config.toml; otherwise it
// starts one (in its own session, so it outlives the caller) and waits
// until CRI answers. Call WriteConfig first. While ctx lives, a containerd
// that dies is restarted; pods keep running meanwhile because their shims
// do. Cancelling ctx only stops watching: containerd keeps running, so an
// agent restart leaves it and the pods alone.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:   cfg,
		paths: PathsFor(cfg.StateDir),
		log:   cfg.Logger.With("component", "containerd", "stateDir", cfg.StateDir),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if _, err := os.Stat(d.paths.ConfigFile); err != nil {
		return nil, fmt.Errorf("containerd: no config (call WriteConfig first): %w", err)
	}
	for _, dir := range cfg.SharedDirs {
		if err := shareDir(dir); err != nil {
			return nil, err
		}
	}
	if err := d.ensure(ctx); err != nil {
		return nil, err
	}
	go d.watch(ctx)
	return d, nil
}

// Socket is the gRPC (CRI) socket.
func (d *Daemon) Socket() string { return d.paths.Socket }

// Pid is the current containerd's pid.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pid
}

// Paths are the daemon's files.
func (d *Daemon) Paths() Paths { return d.paths }

// Done is closed when the daemon is no longer watched (ctx ended, Stop,
// or the host's state dir was removed).
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop stops watching and stops containerd: SIGTERM, then SIGKILL when it
// is still alive after a grace period or when ctx ends. Pods' shims and
// containers keep running; Cleanup removes those.
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.done
	return Stop(ctx, d.cfg.StateDir)
}

// ensure adopts or starts containerd, under the pid file's lock so that two
// agents (an old one exiting, a new one starting) never both start one.
func (d *Daemon) ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	pf, err := lockPidFile(ctx, d.paths.PidFile)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	defer pf.Close() // releases the lock

	if pid, ok := d.adoptable(ctx, pf); ok {
		d.log.Info("adopted running containerd", "pid", pid)
		d.setPid(pid, watchPid(pid, d.done))
		return nil
	}
	began := time.Now()
	cmd, logOffset, err := launch(d.cfg, d.paths, pf)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reap it
	v, err := waitCRI(ctx, d.paths.Socket, exited)
	if err != nil {
		killAndWait(cmd.Process.Pid, exited)
		return fmt.Errorf("containerd: %w\ncontainerd.log:\n%s", err, logTail(d.paths.LogFile, logOffset))
	}
	d.log.Info("started containerd", "pid", cmd.Process.Pid, "version", v.RuntimeVersion,
		"criReady", time.Since(began).Round(time.Millisecond))
	d.setPid(cmd.Process.Pid, exited)
	return nil
}

// adoptable says whether the recorded containerd can be kept. One that is
// alive but useless (no CRI, or an older config.toml) is stopped here.
func (d *Daemon) adoptable(ctx context.Context, pf *os.File) (int, bool) {
	pid, err := readPid(pf)
	if err != nil || !isContainerd(pid, d.paths.ConfigFile) {
		return 0, false
	}
	reason := ""
	if newerThan(d.paths.ConfigFile, pf) {
		reason = "config.toml changed since it started"
	} else if _, err := criVersion(ctx, d.paths.Socket, 5*time.Second); err != nil {
		reason = fmt.Sprintf("CRI does not answer: %v", err)
	} else {
		return pid, true
	}
	d.log.Info("restarting containerd", "pid", pid, "reason", reason)
	if err := signalAndWait(ctx, pid); err != nil {
		d.log.Warn("stopping old containerd", "pid", pid, "err", err)
	}
	return 0, false
}

func (d *Daemon) setPid(pid int, exited <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pid, d.exited = pid, exited
}

// watch restarts containerd whenever it dies, until ctx ends or Stop.
// The delay doubles while containerd keeps dying soon after a start.
func (d *Daemon) watch(ctx context.Context) {
	defer close(d.done)
	const minBackoff, maxBackoff, stable = 100 * time.Millisecond, 10 * time.Second, time.Minute
	backoff := minBackoff
	up := time.Now()
	for {
		d.mu.Lock()
		exited, pid := d.exited, d.pid
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-d.stop:
			return
		case <-exited:
		}
		// Cleanup removed the host: nothing to restart.
		if _, err := os.Stat(d.paths.ConfigFile); err != nil {
			d.log.Info("containerd exited and its config is gone: not restarting", "pid", pid)
			return
		}
		if time.Since(up) > stable {
			backoff = minBackoff
		}
		for {
			d.log.Warn("containerd is not running: restarting", "pid", pid, "after", backoff)
			select {
			case <-ctx.Done():
				return
			case <-d.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			err := d.ensure(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			d.log.Error("restarting containerd", "err", err)
		}
		up = time.Now()
	}
}
