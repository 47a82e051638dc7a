// Package volume prepares a pod's volumes on the node for the pod workers:
// emptyDir directories, hostPath checks, and configMap, secret,
// downwardAPI and projected volumes written as files that are replaced
// atomically when their source changes (the kubelet's "..data" symlink
// scheme, so a reader never sees half an update).
//
// Volumes live under <state>/pods/<pod uid>/volumes/<volume>/
// (docs/agent.md). The runtime bind-mounts these directories into
// containers; an emptyDir of medium Memory is a tmpfs mounted there,
// unmounted at teardown. persistentVolumeClaim volumes resolve to the path
// of their bound local PersistentVolume (package localpv mounts its
// volumes there).
package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"wharf.dev/wharf/internal/mountinfo"
)

// Sources reads the objects that volumes project. A missing object is
// reported with the API's NotFound error.
type Sources interface {
	ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
	// ServiceAccountToken returns a token of pod's service account bound
	// to pod, as p asks, fresh enough to be written (the volume is
	// rewritten when it changes).
	ServiceAccountToken(ctx context.Context, pod *v1.Pod, p *v1.ServiceAccountTokenProjection) ([]byte, error)
}

// Manager sets up and tears down the volumes of the pods under one
// directory.
type Manager struct {
	root string
	src  Sources
	node *v1.Node // for local volumes' node affinity; nil: no claims
}

// New returns a Manager keeping pods' directories under root
// (<state>/pods).
func New(root string, src Sources, opts ...Option) *Manager {
	m := &Manager{root: root, src: src}
	for _, o := range opts {
		o(m)
	}
	return m
}

// PodDir is the directory of everything the agent keeps for a pod.
func (m *Manager) PodDir(uid types.UID) string { return filepath.Join(m.root, string(uid)) }

// Dir is a volume's directory.
func (m *Manager) Dir(uid types.UID, volume string) string {
	return filepath.Join(m.PodDir(uid), "volumes", volume)
}

// Setup makes every volume of pod ready and returns the host path of each
// by name. It is idempotent and cheap when nothing changed, so the pod
// workers call it on every sync to pick up ConfigMap and Secret changes.
// allocatable is the node's, for downward API limits a container leaves
// unset.
func (m *Manager) Setup(ctx context.Context, pod *v1.Pod, allocatable v1.ResourceList) (map[string]string, error) {
	paths := make(map[string]string, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := m.setup(ctx, pod, v, allocatable)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		paths[v.Name] = p
	}
	return paths, nil
}

func (m *Manager) setup(ctx context.Context, pod *v1.Pod, v *v1.Volume, allocatable v1.ResourceList) (string, error) {
	dir := m.Dir(pod.UID, v.Name)
	switch {
	case v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumMemory:
		return dir, memoryEmptyDir(dir, pod, v.EmptyDir, allocatable)
	case v.EmptyDir != nil:
		// World-writable like the kubelet's, so any container user can
		// write.
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, 0o777)
	case v.HostPath != nil:
		return v.HostPath.Path, checkHostPath(v.HostPath)
	case v.PersistentVolumeClaim != nil:
		return m.claimPath(ctx, pod, v.PersistentVolumeClaim)
	case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
		payload, err := m.payload(ctx, pod, v, allocatable)
		if err != nil {
			return "", err
		}
		return dir, writeAtomic(dir, payload)
	}
	return "", errors.New("unsupported volume type")
}

// Teardown removes everything the agent keeps for a pod (its volumes, its
// /etc/hosts and termination message files). Host paths are left alone.
func (m *Manager) Teardown(uid types.UID) error {
	if err := mountinfo.UnmountAll(m.PodDir(uid)); err != nil {
		return fmt.Errorf("pod %s: %w", uid, err)
	}
	if err := os.RemoveAll(m.PodDir(uid)); err != nil {
		return fmt.Errorf("pod %s: remove %s: %w", uid, m.PodDir(uid), err)
	}
	return nil
}

// Pods lists the UIDs that have a directory, for the orphan sweep.
func (m *Manager) Pods() ([]types.UID, error) {
	entries, err := os.ReadDir(m.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []types.UID
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, types.UID(e.Name()))
		}
	}
	return uids, nil
}

// checkHostPath creates or checks a hostPath per its type.
func checkHostPath(h *v1.HostPathVolumeSource) error {
	typ := v1.HostPathUnset
	if h.Type != nil {
		typ = *h.Type
	}
	switch typ {
	case v1.HostPathDirectoryOrCreate:
		return os.MkdirAll(h.Path, 0o755)
	case v1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	case v1.HostPathUnset:
		return nil
	}
	fi, err := os.Stat(h.Path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	mode := fi.Mode()
	ok := map[v1.HostPathType]bool{
		v1.HostPathDirectory: mode.IsDir(),
		v1.HostPathFile:      mode.IsRegular(),
		v1.HostPathSocket:    mode&fs.ModeSocket != 0,
		v1.HostPathCharDev:   mode&fs.ModeCharDevice != 0,
		v1.HostPathBlockDev:  mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0,
	}[typ]
	if !ok {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", h.Path, typ)
	}
	return nil
}
