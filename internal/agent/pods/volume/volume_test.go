package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

type sources struct {
	cms     map[string]*v1.ConfigMap
	secrets map[string]*v1.Secret
}

// ServiceAccountToken hands out a token naming what it was asked for; the
// audience "refused" fails as the API would.
func (s *sources) ServiceAccountToken(_ context.Context, pod *v1.Pod, p *v1.ServiceAccountTokenProjection) ([]byte, error) {
	if p.Audience == "refused" {
		return nil, apierrors.NewForbidden(v1.Resource("serviceaccounts"), "default", errors.New("no"))
	}
	return []byte("token:" + pod.Name + ":" + p.Audience), nil
}

func (s *sources) ConfigMap(_ context.Context, _, name string) (*v1.ConfigMap, error) {
	if cm, ok := s.cms[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("configmaps"), name)
}

func (s *sources) Secret(_ context.Context, _, name string) (*v1.Secret, error) {
	if sec, ok := s.secrets[name]; ok {
		return sec, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("secrets"), name)
}

// tree lists a volume as its user sees it: path → content and mode,
// following the symlinks.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() {
			sub, _ := os.ReadDir(p)
			for _, e := range sub {
				walk(filepath.Join(rel, e.Name()))
			}
			return
		}
		data, _ := os.ReadFile(p)
		out[rel] = fi.Mode().Perm().String() + " " + string(data)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			walk(e.Name())
		}
	}
	return out
}

func pod(vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid1", Labels: map[string]string{"b": "2", "a": "1"}},
		Spec: v1.PodSpec{
			Volumes: vols,
			Containers: []v1.Container{{Name: "app", Resources: v1.ResourceRequirements{
				Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
			}}},
		},
	}
}

func TestSetup(t *testing.T) {
	src := &sources{
		cms: map[string]*v1.ConfigMap{"cfg": {
			Data:       map[string]string{"app.conf": "port=80", "extra": "x"},
			BinaryData: map[string][]byte{"blob": {0, 1}},
		}},
		secrets: map[string]*v1.Secret{"sec": {Data: map[string][]byte{"password": []byte("hunter2")}}},
	}
	cmVol := func(name string, items []v1.KeyToPath, optional *bool) v1.Volume {
		return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: name}, Items: items, Optional: optional,
		}}}
	}
	tests := []struct {
		name    string
		vol     v1.Volume
		want    map[string]string
		wantErr string
	}{
		{
			name: "configMap: every key",
			vol:  cmVol("cfg", nil, nil),
			want: map[string]string{"app.conf": "-rw-r--r-- port=80", "extra": "-rw-r--r-- x", "blob": "-rw-r--r-- \x00\x01"},
		},
		{
			name: "configMap items with paths and modes",
			vol:  cmVol("cfg", []v1.KeyToPath{{Key: "app.conf", Path: "conf/app.conf", Mode: ptr.To[int32](0o600)}}, nil),
			want: map[string]string{"conf/app.conf": "-rw------- port=80"},
		},
		{
			name:    "missing key",
			vol:     cmVol("cfg", []v1.KeyToPath{{Key: "nope", Path: "nope"}}, nil),
			wantErr: `volume "cfg": configmap references non-existent config key: nope`,
		},
		{
			name: "missing optional ConfigMap is empty",
			vol:  cmVol("gone", nil, ptr.To(true)),
			want: map[string]string{},
		},
		{
			name:    "missing ConfigMap",
			vol:     cmVol("gone", nil, nil),
			wantErr: `volume "gone": configmap "gone" not found`,
		},
		{
			name: "secret with default mode",
			vol:  v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr.To[int32](0o400)}}},
			want: map[string]string{"password": "-r-------- hunter2"},
		},
		{
			name: "downward API",
			vol: v1.Volume{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "mem", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
			}}}},
			want: map[string]string{"labels": "-rw-r--r-- a=\"1\"\nb=\"2\"", "name": "-rw-r--r-- web", "mem": "-rw-r--r-- 64"},
		},
		{
			name: "projected",
			vol: v1.Volume{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Items: []v1.KeyToPath{{Key: "extra", Path: "extra"}}}},
				{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
				{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}},
			want: map[string]string{"extra": "-rw-r--r-- x", "password": "-rw-r--r-- hunter2", "ns": "-rw-r--r-- ns"},
		},
		{
			name: "service account token",
			vol: v1.Volume{Name: "t", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o640), Sources: []v1.VolumeProjection{
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "vault"}},
				{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}},
			want: map[string]string{"token": "-rw-r----- token:web:vault", "namespace": "-rw-r----- ns"},
		},
		{
			name:    "service account token refused",
			vol:     v1.Volume{Name: "t", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "refused"}}}}}},
			wantErr: `volume "t": service account token: serviceaccounts "default" is forbidden: no`,
		},
		{
			name:    "unsupported type",
			vol:     v1.Volume{Name: "nfs", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/"}}},
			wantErr: `volume "nfs": unsupported volume type`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(t.TempDir(), src)
			paths, err := m.Setup(context.Background(), pod(tt.vol), nil)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tree(t, paths[tt.vol.Name])); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAtomicUpdate(t *testing.T) {
	src := &sources{cms: map[string]*v1.ConfigMap{"cfg": {Data: map[string]string{"a": "1", "b": "2"}}}}
	m := New(t.TempDir(), src)
	p := pod(v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}})
	paths, err := m.Setup(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["cfg"]
	data1, _ := os.Readlink(filepath.Join(dir, dataDirName))
	if target, _ := os.Readlink(filepath.Join(dir, "a")); target != "..data/a" {
		t.Errorf("a links to %q", target)
	}

	// Nothing changed: nothing is rewritten.
	if _, err := m.Setup(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, dataDirName)); again != data1 {
		t.Errorf("rewritten without a change: %s -> %s", data1, again)
	}

	// A change switches all files at once and drops removed keys.
	src.cms["cfg"] = &v1.ConfigMap{Data: map[string]string{"a": "10", "c": "3"}}
	if _, err := m.Setup(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "-rw-r--r-- 10", "c": "-rw-r--r-- 3"}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	var hidden []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			hidden = append(hidden, e.Name())
		}
	}
	sort.Strings(hidden) // the timestamped directory sorts before "..data"
	if len(hidden) != 2 || hidden[1] != dataDirName || hidden[0] == data1 {
		t.Errorf("hidden entries %v: want ..data and one new timestamped directory", hidden)
	}
}

func TestEmptyDirHostPathTeardown(t *testing.T) {
	root := t.TempDir()
	hostDir := filepath.Join(t.TempDir(), "host", "dir")
	hostFile := filepath.Join(t.TempDir(), "host", "file")
	m := New(filepath.Join(root, "pods"), &sources{})
	p := pod(
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "hd", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: ptr.To(v1.HostPathDirectoryOrCreate)}}},
		v1.Volume{Name: "hf", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostFile, Type: ptr.To(v1.HostPathFileOrCreate)}}},
	)
	paths, err := m.Setup(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"scratch": filepath.Join(root, "pods", "uid1", "volumes", "scratch"), "hd": hostDir, "hf": hostFile}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(paths["scratch"]); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(hostFile); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("FileOrCreate: %v", err)
	}
	bad := pod(v1.Volume{Name: "x", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostFile, Type: ptr.To(v1.HostPathDirectory)}}})
	if _, err := m.Setup(context.Background(), bad, nil); err == nil {
		t.Error("a file passed as hostPath type Directory")
	}
	uids, _ := m.Pods()
	if len(uids) != 1 || uids[0] != "uid1" {
		t.Errorf("Pods() = %v", uids)
	}
	if err := m.Teardown("uid1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.PodDir("uid1")); !os.IsNotExist(err) {
		t.Errorf("pod dir remains: %v", err)
	}
	if _, err := os.Stat(hostDir); err != nil {
		t.Error("teardown removed a hostPath")
	}
}

func TestValidatePath(t *testing.T) {
	for _, p := range []string{"", "/abs", "../up", "a/../../b", "..data"} {
		if validatePath(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
	for _, p := range []string{"a", "a/b", "a..b"} {
		if err := validatePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
}
