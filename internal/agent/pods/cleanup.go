package pods

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// housekeeping removes what pods that are gone left on the node: their
// directories, log directories and cgroups. Pods still in the API or in
// the runtime are left to their workers.
func (m *Manager) housekeeping() {
	keep := m.knownPods()
	m.mu.Lock()
	for uid := range m.workers {
		keep[uid] = true
	}
	m.mu.Unlock()
	if uids, err := m.volumes.Pods(); err == nil {
		for _, uid := range uids {
			if !keep[uid] {
				m.log.Info("removing the directory of a pod that is gone", "uid", uid)
				if err := m.volumes.Teardown(uid); err != nil {
					m.log.Warn("orphan sweep", "err", err)
				}
			}
		}
	}
	if entries, err := os.ReadDir(m.layout.logsDir()); err == nil {
		for _, e := range entries {
			i := strings.LastIndexByte(e.Name(), '_')
			if i < 0 || keep[types.UID(e.Name()[i+1:])] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(m.layout.logsDir(), e.Name())); err != nil {
				m.log.Warn("orphan sweep", "err", err)
			}
		}
	}
	for _, uid := range m.cgroupPods() {
		if !keep[uid] {
			if err := m.removeCgroups(uid); err != nil {
				m.log.Warn("orphan sweep", "uid", uid, "err", err)
			}
		}
	}
}

// cgroupHierarchies are the roots under which a pod has cgroups: every v1
// controller's mount, or the unified root.
func (m *Manager) cgroupHierarchies() []string {
	roots := []string{m.cgroupFS}
	entries, err := os.ReadDir(m.cgroupFS)
	if err != nil {
		return roots
	}
	for _, e := range entries {
		// Co-mounted controllers appear again as symlinks (cpu ->
		// cpu,cpuacct); the directories cover them.
		if e.IsDir() {
			roots = append(roots, filepath.Join(m.cgroupFS, e.Name()))
		}
	}
	return roots
}

// cgroupPods lists the pod UIDs that have a cgroup under the root.
func (m *Manager) cgroupPods() []types.UID {
	seen := map[types.UID]bool{}
	for _, h := range m.cgroupHierarchies() {
		entries, err := os.ReadDir(filepath.Join(h, m.layout.cgroupRoot))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "pod") {
				seen[types.UID(strings.TrimPrefix(e.Name(), "pod"))] = true
			}
		}
	}
	uids := make([]types.UID, 0, len(seen))
	for uid := range seen {
		uids = append(uids, uid)
	}
	return uids
}

// removeCgroups removes the pod's cgroup directories in every hierarchy,
// deepest first: cgroupfs only removes empty directories (rmdir), and the
// containers' cgroups sit below the pod's. Missing ones are fine.
func (m *Manager) removeCgroups(uid types.UID) error {
	var errs []error
	for _, h := range m.cgroupHierarchies() {
		root := filepath.Join(h, m.layout.cgroupParent(uid))
		var dirs []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// keepPerContainer is how many instances of each container stay in the
// runtime: the current one and the one before, for `kubectl logs
// --previous` and lastState.
const keepPerContainer = 2

// gcContainers removes a pod's older exited containers, with their logs
// and termination files, and old sandboxes that nothing kept lives in.
func (m *Manager) gcContainers(ctx context.Context, pod *v1.Pod, rt *podRuntime) error {
	kept := map[string]bool{}
	count := map[string]int{}
	var errs []error
	for _, c := range rt.containers {
		count[c.name]++
		if count[c.name] <= keepPerContainer || c.running() {
			kept[c.sandboxID] = true
			continue
		}
		if err := m.cfg.Runtime.RemoveContainer(ctx, c.id); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.id, err))
			kept[c.sandboxID] = true
			continue
		}
		m.reader.forget(c.id)
		logPath := c.logPath
		if logPath == "" {
			logPath = filepath.Join(m.layout.podLogDir(pod.Namespace, pod.Name, pod.UID), containerLogPath(c.name, c.attempt))
		}
		rotated, _ := rotatedLogs(logPath)
		for _, p := range append([]string{logPath, m.layout.terminationFile(pod.UID, c.name, c.attempt)}, rotated...) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	for i, s := range rt.sandboxes {
		// The newest sandbox stays, as do those holding kept containers.
		if i == 0 || kept[s.Id] || s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if err := m.cfg.Runtime.RemovePodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", s.Id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pod %q: %w", podRef(pod), err)
	}
	return nil
}
