package volume

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"wharf.dev/wharf/internal/agent/pods/fieldpath"
)

// defaultMode is the API's default file mode for projected files.
const defaultMode int32 = 0o644

// File is one file of a projected volume.
type File struct {
	Data []byte
	Mode int32
}

// payload computes the files of a configMap, secret, downwardAPI or
// projected volume.
func (m *Manager) payload(ctx context.Context, pod *v1.Pod, v *v1.Volume, allocatable v1.ResourceList) (map[string]File, error) {
	out := map[string]File{}
	var err error
	switch {
	case v.ConfigMap != nil:
		err = m.configMapFiles(ctx, out, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, mode(v.ConfigMap.DefaultMode), v.ConfigMap.Optional)
	case v.Secret != nil:
		err = m.secretFiles(ctx, out, pod.Namespace, v.Secret.SecretName, v.Secret.Items, mode(v.Secret.DefaultMode), v.Secret.Optional)
	case v.DownwardAPI != nil:
		err = downwardFiles(out, pod, v.DownwardAPI.Items, mode(v.DownwardAPI.DefaultMode), allocatable)
	case v.Projected != nil:
		err = m.projectedFiles(ctx, out, pod, v.Projected, allocatable)
	}
	return out, err
}

func mode(m *int32) int32 {
	if m == nil {
		return defaultMode
	}
	return *m
}

func (m *Manager) configMapFiles(ctx context.Context, out map[string]File, ns, name string, items []v1.KeyToPath, defMode int32, optional *bool) error {
	cm, err := m.src.ConfigMap(ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isTrue(optional) {
			return nil
		}
		return missing("configmap", name, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return project(out, data, items, defMode, optional, "configmap references non-existent config key: %s")
}

func (m *Manager) secretFiles(ctx context.Context, out map[string]File, ns, name string, items []v1.KeyToPath, defMode int32, optional *bool) error {
	s, err := m.src.Secret(ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isTrue(optional) {
			return nil
		}
		return missing("secret", name, err)
	}
	return project(out, s.Data, items, defMode, optional, "references non-existent secret key: %s")
}

// project copies every key, or just the listed items, into out.
func project(out map[string]File, data map[string][]byte, items []v1.KeyToPath, defMode int32, optional *bool, missingKey string) error {
	if len(items) == 0 {
		for k, v := range data {
			out[k] = File{Data: v, Mode: defMode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			return fmt.Errorf(missingKey, it.Key)
		}
		out[it.Path] = File{Data: v, Mode: pickMode(it.Mode, defMode)}
	}
	return nil
}

func downwardFiles(out map[string]File, pod *v1.Pod, items []v1.DownwardAPIVolumeFile, defMode int32, allocatable v1.ResourceList) error {
	for _, it := range items {
		var value string
		var err error
		switch {
		case it.FieldRef != nil:
			value, err = fieldpath.ObjectField(pod, it.FieldRef.FieldPath, fieldpath.Addresses{})
		case it.ResourceFieldRef != nil:
			c := container(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return fmt.Errorf("resourceFieldRef: no container %q", it.ResourceFieldRef.ContainerName)
			}
			value, err = fieldpath.ResourceField(it.ResourceFieldRef, c, allocatable)
		}
		if err != nil {
			return fmt.Errorf("item %q: %w", it.Path, err)
		}
		out[it.Path] = File{Data: []byte(value), Mode: pickMode(it.Mode, defMode)}
	}
	return nil
}

func (m *Manager) projectedFiles(ctx context.Context, out map[string]File, pod *v1.Pod, p *v1.ProjectedVolumeSource, allocatable v1.ResourceList) error {
	defMode := mode(p.DefaultMode)
	for _, s := range p.Sources {
		var err error
		switch {
		case s.ConfigMap != nil:
			err = m.configMapFiles(ctx, out, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, defMode, s.ConfigMap.Optional)
		case s.Secret != nil:
			err = m.secretFiles(ctx, out, pod.Namespace, s.Secret.Name, s.Secret.Items, defMode, s.Secret.Optional)
		case s.DownwardAPI != nil:
			err = downwardFiles(out, pod, s.DownwardAPI.Items, defMode, allocatable)
		case s.ServiceAccountToken != nil:
			var tok []byte
			if tok, err = m.src.ServiceAccountToken(ctx, pod, s.ServiceAccountToken); err == nil {
				out[s.ServiceAccountToken.Path] = File{Data: tok, Mode: defMode}
			} else {
				err = fmt.Errorf("service account token: %w", err)
			}
		default:
			err = errors.New("unsupported projected volume source")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func pickMode(m *int32, def int32) int32 {
	if m != nil {
		return *m
	}
	return def
}

func isTrue(b *bool) bool { return b != nil && *b }

func container(pod *v1.Pod, name string) *v1.Container {
	for _, list := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// missingError reads like the kubelet's (`configmap "x" not found`) and
// unwraps to the API error.
type missingError struct {
	msg string
	err error
}

func (e *missingError) Error() string { return e.msg }
func (e *missingError) Unwrap() error { return e.err }

func missing(kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return &missingError{msg: fmt.Sprintf("%s %q not found", kind, name), err: err}
	}
	return fmt.Errorf("%s %q: %w", kind, name, err)
}
