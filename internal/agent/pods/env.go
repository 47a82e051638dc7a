package pods

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"wharf.dev/wharf/internal/agent/pods/fieldpath"
)

// envVar is one resolved environment variable.
type envVar struct{ name, value string }

// objectSource reads the ConfigMaps and Secrets a pod refers to; errors
// for missing objects are the API's NotFound errors.
type objectSource interface {
	ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// envInputs is what resolving a container's environment needs besides the
// pod itself.
type envInputs struct {
	objects     objectSource
	addresses   fieldpath.Addresses
	allocatable v1.ResourceList
	// services are the variables of the services the pod sees
	// (serviceEnv): $(VAR) in env may use them, and those the container
	// does not define itself come last.
	services map[string]string
}

// resolveEnv builds a container's environment as the kubelet does: envFrom
// sources first, then env in order, each value expanding the $(VAR)s
// defined before it. A later definition of a name replaces the value in
// place. Missing optional sources are skipped; anything else missing is an
// error (the container's CreateContainerConfigError).
func resolveEnv(ctx context.Context, pod *v1.Pod, c *v1.Container, in envInputs) ([]envVar, error) {
	var env []envVar
	index := map[string]int{}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			env[i].value = value
			return
		}
		index[name] = len(env)
		env = append(env, envVar{name, value})
	}
	lookup := func(name string) (string, bool) {
		if i, ok := index[name]; ok {
			return env[i].value, true
		}
		v, ok := in.services[name]
		return v, ok
	}

	for _, from := range c.EnvFrom {
		data, err := envFromData(ctx, pod.Namespace, from, in.objects)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			name := from.Prefix + k
			// The kubelet skips (and reports) keys that are not valid names.
			if len(validation.IsEnvVarName(name)) != 0 {
				continue
			}
			set(name, data[k])
		}
	}

	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup))
			continue
		}
		value, ok, err := envValueFrom(ctx, pod, c, e.ValueFrom, in)
		if err != nil {
			return nil, err
		}
		if ok {
			set(e.Name, value)
		}
	}
	for _, k := range sortedKeys(in.services) {
		if _, ok := index[k]; !ok {
			set(k, in.services[k])
		}
	}
	return env, nil
}

// envFromData reads an envFrom source; a missing optional one is empty.
func envFromData(ctx context.Context, namespace string, from v1.EnvFromSource, objects objectSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := objects.ConfigMap(ctx, namespace, from.ConfigMapRef.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional(from.ConfigMapRef.Optional) {
				return nil, nil
			}
			return nil, refError("configmap", from.ConfigMapRef.Name, err)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := objects.Secret(ctx, namespace, from.SecretRef.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional(from.SecretRef.Optional) {
				return nil, nil
			}
			return nil, refError("secret", from.SecretRef.Name, err)
		}
		data := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	return nil, nil
}

// envValueFrom resolves one valueFrom; ok is false when an optional
// reference is missing and the variable is to be left out.
func envValueFrom(ctx context.Context, pod *v1.Pod, c *v1.Container, from *v1.EnvVarSource, in envInputs) (value string, ok bool, err error) {
	switch {
	case from.FieldRef != nil:
		v, err := fieldpath.ObjectField(pod, from.FieldRef.FieldPath, in.addresses)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		target := c
		if name := from.ResourceFieldRef.ContainerName; name != "" && name != c.Name {
			if target = findContainer(pod, name); target == nil {
				return "", false, fmt.Errorf("resourceFieldRef: no container %q", name)
			}
		}
		v, err := fieldpath.ResourceField(from.ResourceFieldRef, target, in.allocatable)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := in.objects.ConfigMap(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, refError("configmap", ref.Name, err)
		}
		if v, found := cm.Data[ref.Key]; found {
			return v, true, nil
		}
		if v, found := cm.BinaryData[ref.Key]; found {
			return string(v), true, nil
		}
		if optional(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := in.objects.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, refError("secret", ref.Name, err)
		}
		if v, found := s.Data[ref.Key]; found {
			return string(v), true, nil
		}
		if optional(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
	}
	return "", false, nil
}

func optional(b *bool) bool { return b != nil && *b }

// findContainer finds a container or init container of pod by name.
func findContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// objectError reads like the kubelet's message for a missing reference
// (`configmap "x" not found`) and still unwraps to the API error.
type objectError struct {
	msg string
	err error
}

func (e *objectError) Error() string { return e.msg }
func (e *objectError) Unwrap() error { return e.err }

func refError(kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return &objectError{msg: fmt.Sprintf("%s %q not found", kind, name), err: err}
	}
	return fmt.Errorf("%s %q: %w", kind, name, err)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expand replaces $(VAR) references in s the way Kubernetes expands
// command, args and env values: a defined variable is substituted, an
// undefined one is left as written, $$ escapes a dollar, and an unclosed
// "$(" stays literal.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	checkpoint := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		b.WriteString(s[checkpoint:i])
		text, advance := readReference(s[i+1:], lookup)
		b.WriteString(text)
		i += advance
		checkpoint = i + 1
	}
	b.WriteString(s[checkpoint:])
	return b.String()
}

// readReference reads what follows a '$' and returns its expansion and how
// many bytes it consumed.
func readReference(s string, lookup func(string) (string, bool)) (string, int) {
	switch s[0] {
	case '$':
		return "$", 1
	case '(':
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return "$(", 1
		}
		name := s[1:end]
		if v, ok := lookup(name); ok {
			return v, end + 1
		}
		return "$(" + name + ")", end + 1
	default:
		return "$" + s[:1], 1
	}
}

// envLookup looks names up in an ordered environment.
func envLookup(env []envVar) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.name] = e.value
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// expandAll expands each of ss.
func expandAll(ss []string, lookup func(string) (string, bool)) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, lookup)
	}
	return out
}
