package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stopGrace is how long containerd gets to exit after SIGTERM.
const stopGrace = 10 * time.Second

// lockPidFile opens the pid file and takes its exclusive flock (released
// when the file is closed).
func lockPidFile(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock pid file: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock pid file %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readPid(f *os.File) (int, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func writePid(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// newerThan says whether path was modified after the pid file was
// written, i.e. after the recorded containerd was started.
func newerThan(path string, pidFile *os.File) bool {
	a, err := os.Stat(path)
	if err != nil {
		return false
	}
	b, err := pidFile.Stat()
	if err != nil {
		return false
	}
	return a.ModTime().After(b.ModTime())
}

// watchPid returns a channel closed when pid (not necessarily a child)
// exits, using a pidfd. It gives up when quit closes.
func watchPid(pid int, quit <-chan struct{}) <-chan struct{} {
	exited := make(chan struct{})
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		close(exited) // already gone
		return exited
	}
	go func() {
		defer unix.Close(fd)
		for {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 200)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				close(exited)
				return
			}
			select {
			case <-quit:
				return
			default:
			}
		}
	}()
	return exited
}

// signalAndWait stops pid: SIGTERM, then SIGKILL after stopGrace or when
// ctx ends.
func signalAndWait(ctx context.Context, pid int) error {
	quit := make(chan struct{})
	defer close(quit)
	exited := watchPid(pid, quit)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("SIGTERM pid %d: %w", pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
	case <-time.After(stopGrace):
	}
	killAndWait(pid, exited)
	return nil
}

// killAndWait sends SIGKILL and waits (up to 5 s) for exited.
func killAndWait(pid int, exited <-chan struct{}) {
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
}

// Stop stops the containerd recorded in stateDir (for `wharf down`, from a
// process that did not start it) and removes the pid file. A pid that is
// not a containerd of this state dir is left alone.
func Stop(ctx context.Context, stateDir string) error {
	p := PathsFor(stateDir)
	f, err := lockPidFile(ctx, p.PidFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("stop containerd: %w", err)
	}
	defer f.Close()
	if pid, err := readPid(f); err == nil && isContainerd(pid, p.ConfigFile) {
		if err := signalAndWait(ctx, pid); err != nil {
			return fmt.Errorf("stop containerd: %w", err)
		}
	}
	if err := os.Remove(p.PidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stop containerd: %w", err)
	}
	return nil
}
