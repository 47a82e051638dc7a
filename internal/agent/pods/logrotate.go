package pods

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's defaults for --container-log-max-size and
// --container-log-max-files.
const (
	defaultContainerLogMaxSize  = 10 << 20
	defaultContainerLogMaxFiles = 5
)

// rotateLogs rotates the log of every running container that has grown
// beyond ContainerLogMaxSize, as the kubelet's container log manager does:
// the file is renamed to <log>.<unix nanoseconds>, the runtime reopens the
// log at its path, and the oldest rotated files go so that at most
// ContainerLogMaxFiles remain with the current one. `kubectl logs` reads
// the current file. Rotated files are kept uncompressed.
func (m *Manager) rotateLogs(ctx context.Context) {
	running := &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}
	cs, err := m.cfg.Runtime.ListContainers(ctx, running)
	if err != nil {
		m.log.Warn("log rotation: cannot list containers", "err", err)
		return
	}
	for _, c := range cs {
		ns, name, uid := c.Labels[labelPodNamespace], c.Labels[labelPodName], c.Labels[labelPodUID]
		if ns == "" || name == "" || uid == "" || c.Metadata == nil {
			continue
		}
		path := filepath.Join(m.layout.podLogDir(ns, name, types.UID(uid)), containerLogPath(c.Metadata.Name, c.Metadata.Attempt))
		fi, err := os.Stat(path)
		if err != nil || fi.Size() < m.cfg.ContainerLogMaxSize {
			continue
		}
		if err := m.rotateLog(ctx, c.Id, path); err != nil {
			m.log.Warn("log rotation failed", "pod", ns+"/"+name, "container", c.Metadata.Name, "err", err)
		}
	}
}

// rotateLog rotates one container's log at path.
func (m *Manager) rotateLog(ctx context.Context, id, path string) error {
	stamp := m.clock.Now().UnixNano()
	rotated := path + "." + strconv.FormatInt(stamp, 10)
	for exists(rotated) {
		stamp++
		rotated = path + "." + strconv.FormatInt(stamp, 10)
	}
	if err := os.Rename(path, rotated); err != nil {
		return err
	}
	if err := m.cfg.Runtime.ReopenContainerLog(ctx, id); err != nil {
		// The runtime still writes to the renamed file: give it its name back.
		return errors.Join(fmt.Errorf("reopen log: %w", err), os.Rename(rotated, path))
	}
	old, err := rotatedLogs(path)
	if err != nil {
		return err
	}
	// Beside the current file, the newest maxFiles-1 rotated ones stay.
	for len(old) > m.cfg.ContainerLogMaxFiles-1 {
		if err := os.Remove(old[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		old = old[1:]
	}
	return nil
}

// rotatedLogs lists path's rotated files, oldest first.
func rotatedLogs(path string) ([]string, error) {
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		return nil, err
	}
	var out []string
	stamps := map[string]int64{}
	for _, p := range matches {
		if n, err := strconv.ParseInt(p[len(path)+1:], 10, 64); err == nil {
			out = append(out, p)
			stamps[p] = n
		}
	}
	sort.Slice(out, func(i, j int) bool { return stamps[out[i]] < stamps[out[j]] })
	return out, nil
}

// exists reports whether anything is at path.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
