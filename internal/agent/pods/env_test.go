package pods

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/agent/pods/fieldpath"
)

// fakeObjects serves ConfigMaps and Secrets from maps.
type fakeObjects struct {
	configMaps map[string]map[string]string
	secrets    map[string]map[string][]byte
}

func (f fakeObjects) ConfigMap(_ context.Context, _, name string) (*v1.ConfigMap, error) {
	d, ok := f.configMaps[name]
	if !ok {
		return nil, apierrors.NewNotFound(v1.Resource("configmaps"), name)
	}
	return &v1.ConfigMap{Data: d}, nil
}

func (f fakeObjects) Secret(_ context.Context, _, name string) (*v1.Secret, error) {
	d, ok := f.secrets[name]
	if !ok {
		return nil, apierrors.NewNotFound(v1.Resource("secrets"), name)
	}
	return &v1.Secret{Data: d}, nil
}

func cmRef(name, key string, optional bool) *v1.EnvVarSource {
	return &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func secretRef(name, key string, optional bool) *v1.EnvVarSource {
	return &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func fieldRef(path string) *v1.EnvVarSource {
	return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: path}}
}

func TestResolveEnv(t *testing.T) {
	objects := fakeObjects{
		configMaps: map[string]map[string]string{"cfg": {"mode": "fast", "level": "3", "bad-name": "x", "1st": "y"}},
		secrets:    map[string]map[string][]byte{"sec": {"password": []byte("hunter2")}},
	}
	in := envInputs{
		objects:     objects,
		addresses:   fieldpath.Addresses{PodIPs: []string{"10.244.0.5"}, HostIPs: []string{"10.0.0.11"}},
		allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")},
	}
	tests := []struct {
		name    string
		from    []v1.EnvFromSource
		env     []v1.EnvVar
		limits  v1.ResourceList
		want    []envVar
		wantErr string
	}{
		{
			name: "values expand earlier variables only",
			env: []v1.EnvVar{
				{Name: "A", Value: "a"},
				{Name: "B", Value: "$(A)-$(C)"},
				{Name: "C", Value: "c"},
				{Name: "D", Value: "$$(A) $(A)"},
			},
			want: []envVar{{"A", "a"}, {"B", "a-$(C)"}, {"C", "c"}, {"D", "$(A) a"}},
		},
		{
			name: "envFrom with prefix (relaxed names), env can refer to it and override it",
			from: []v1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
			env:  []v1.EnvVar{{Name: "SPEED", Value: "$(CFG_mode)"}, {Name: "CFG_level", Value: "9"}},
			want: []envVar{{"CFG_1st", "y"}, {"CFG_bad-name", "x"}, {"CFG_level", "9"}, {"CFG_mode", "fast"}, {"SPEED", "fast"}},
		},
		{
			name: "secret envFrom",
			from: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}}},
			want: []envVar{{"password", "hunter2"}},
		},
		{
			name: "missing optional sources are left out",
			from: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}}},
			env: []v1.EnvVar{
				{Name: "A", ValueFrom: cmRef("nope", "k", true)},
				{Name: "B", ValueFrom: cmRef("cfg", "nokey", true)},
				{Name: "C", ValueFrom: secretRef("nope", "k", true)},
				{Name: "D", ValueFrom: secretRef("sec", "nokey", true)},
				{Name: "E", Value: "$(A)"},
			},
			want: []envVar{{"E", "$(A)"}},
		},
		{
			name: "keys, fields and resources",
			env: []v1.EnvVar{
				{Name: "MODE", ValueFrom: cmRef("cfg", "mode", false)},
				{Name: "PASSWORD", ValueFrom: secretRef("sec", "password", false)},
				{Name: "NAME", ValueFrom: fieldRef("metadata.name")},
				{Name: "NS", ValueFrom: fieldRef("metadata.namespace")},
				{Name: "UID", ValueFrom: fieldRef("metadata.uid")},
				{Name: "NODE", ValueFrom: fieldRef("spec.nodeName")},
				{Name: "POD_IP", ValueFrom: fieldRef("status.podIP")},
				{Name: "HOST_IP", ValueFrom: fieldRef("status.hostIP")},
				{Name: "APP", ValueFrom: fieldRef("metadata.labels['app']")},
				{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
				{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
				{Name: "CPU_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
			},
			limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi")},
			want: []envVar{
				{"MODE", "fast"}, {"PASSWORD", "hunter2"}, {"NAME", "env"}, {"NS", "default"}, {"UID", "uid-env"},
				{"NODE", testNode}, {"POD_IP", "10.244.0.5"}, {"HOST_IP", "10.0.0.11"}, {"APP", "env"},
				{"MEM_MI", "100"}, {"CPU", "4"}, {"CPU_M", "0"},
			},
		},
		{
			name:    "missing ConfigMap",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: cmRef("nope", "k", false)}},
			wantErr: `configmap "nope" not found`,
		},
		{
			name:    "missing key",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: cmRef("cfg", "nokey", false)}},
			wantErr: "couldn't find key nokey in ConfigMap default/cfg",
		},
		{
			name:    "missing Secret",
			from:    []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}},
			wantErr: `secret "nope" not found`,
		},
		{
			name:    "missing secret key",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: secretRef("sec", "nokey", false)}},
			wantErr: "couldn't find key nokey in Secret default/sec",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("env")
			c := &pod.Spec.Containers[0]
			c.EnvFrom, c.Env, c.Resources.Limits = tt.from, tt.env, tt.limits
			got, err := resolveEnv(context.Background(), pod, c, in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.name == "missing ConfigMap" && !apierrors.IsNotFound(errors.Unwrap(err)) {
					t.Errorf("error does not unwrap to NotFound: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(envVar{})); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "B": "beta", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "alpha"},
		{"$(A)-$(B)", "alpha-beta"},
		{"x$(EMPTY)y", "xy"},
		{"$(UNDEFINED)", "$(UNDEFINED)"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$alpha"},
		{"$$", "$"},
		{"$", "$"},
		{"a$", "a$"},
		{"$A", "$A"},
		{"$(A", "$(A"},
		{"$()", "$()"},
		{"$(A)$(B", "alpha$(B"},
		{"100$ and $(A)", "100$ and alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := expand(tt.in, lookup); got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
