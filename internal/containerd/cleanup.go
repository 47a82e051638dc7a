package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/mountinfo"
)

// CNIResultsDir is where libcni (inside containerd) caches each
// attachment's result, shared by every containerd on the machine.
const CNIResultsDir = "/var/lib/cni/results"

// shimSocketDir is where containerd 1.6 puts every shim's socket, whatever
// its state dir.
const shimSocketDir = "/run/containerd/s"

// Cleanup removes every trace of a host, for `wharf down --purge` and host
// removal: Shutdown, then the state dir itself.
func Cleanup(ctx context.Context, stateDir, cgroupRoot string) error {
	err := Shutdown(ctx, stateDir, cgroupRoot)
	if ctx.Err() != nil {
		return err
	}
	abs, aerr := filepath.Abs(stateDir)
	if aerr != nil {
		return errors.Join(err, aerr)
	}
	if rerr := mountinfo.RemoveAll(abs); rerr != nil {
		return errors.Join(err, fmt.Errorf("cleanup state dir: %w", rerr))
	}
	return err
}

// Shutdown stops a host and leaves its files: it kills every process in
// the host's cgroup subtree (containerd, shims, containers), unmounts
// everything under stateDir,
// removes the shim sockets and the cached CNI results of the host's
// sandboxes and the cgroup directories. It goes on after a failure and
// returns what it could not do. A Daemon still watching this host must be
// stopped first, or it restarts containerd.
func Shutdown(ctx context.Context, stateDir, cgroupRoot string) error {
	if stateDir == "" {
		return errors.New("cleanup: no state dir")
	}
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	p := PathsFor(stateDir)
	var errs []error
	fail := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", what, err))
		}
	}

	if cgroupRoot != "" && filepath.Clean(cgroupRoot) != "/" {
		fail("processes", cgroups.Kill(cgroupRoot))
	}
	// A containerd started outside the cgroup root (or with none).
	if f, err := os.Open(p.PidFile); err == nil {
		if pid, err := readPid(f); err == nil && isContainerd(pid, p.ConfigFile) {
			killAndWait(pid, watchPid(pid, ctx.Done()))
		}
		f.Close()
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(append(errs, err)...)
	}

	ids := sandboxAndTaskIDs(p.State)
	fail("shim sockets", removeShimSockets(p.State))
	fail("CNI results", removeCNIResults(ids))
	fail("mounts", mountinfo.UnmountAll(stateDir))
	if cgroupRoot != "" && filepath.Clean(cgroupRoot) != "/" {
		fail("cgroups", cgroups.Remove(cgroupRoot))
	}
	return errors.Join(errs...)
}

// sandboxAndTaskIDs lists the ids containerd has state for: sandboxes
// (whose ids name the CNI results) and tasks (whose address files name
// the shim sockets).
func sandboxAndTaskIDs(state string) []string {
	var ids []string
	for _, pattern := range []string{
		filepath.Join(state, "io.containerd.grpc.v1.cri", "sandboxes", "*"),
		filepath.Join(state, "io.containerd.runtime.v2.task", "*", "*"),
	} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			ids = append(ids, filepath.Base(m))
		}
	}
	return ids
}

// removeShimSockets removes the sockets named by the tasks' address files
// (unix:///run/containerd/s/<hash>): they live outside the state dir.
func removeShimSockets(state string) error {
	files, _ := filepath.Glob(filepath.Join(state, "io.containerd.runtime.v2.task", "*", "*", "address"))
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sock := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
		// Only ever remove something in the shim socket directory.
		if filepath.Dir(filepath.Clean(sock)) != shimSocketDir {
			errs = append(errs, fmt.Errorf("%s names %q, outside %s: left alone", f, sock, shimSocketDir))
			continue
		}
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCNIResults removes the cached results (<network>-<id>-<ifname>)
// of the given sandboxes.
func removeCNIResults(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	entries, err := os.ReadDir(CNIResultsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		for _, id := range ids {
			if strings.Contains(e.Name(), "-"+id+"-") {
				if err := os.Remove(filepath.Join(CNIResultsDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}
