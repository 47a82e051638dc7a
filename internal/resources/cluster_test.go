package resources

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newCluster(mutate ...func(*wharfv1.Cluster)) *wharfv1.Cluster {
	c := &wharfv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "default"},
		Spec:       wharfv1.ClusterSpec{Template: "k8s-local", NodeCount: 2},
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

func TestClusterDefaults(t *testing.T) {
	got := newCluster()
	Clusters().Default(got)
	want := wharfv1.ClusterSpec{Template: "k8s-local", MasterCount: 1, NodeCount: 2, CreateTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestClusterValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*wharfv1.Cluster)
		want   []wantErr
		detail string
	}{
		{name: "minimal"},
		{name: "public template of another project", mutate: func(c *wharfv1.Cluster) { c.Spec.Template = "ops/k8s" }},
		{name: "zero workers", mutate: func(c *wharfv1.Cluster) { c.Spec.NodeCount = 0 }},
		{name: "master count 2", mutate: func(c *wharfv1.Cluster) { c.Spec.MasterCount = 2 }, want: []wantErr{invalid("spec.masterCount")},
			detail: "spec.masterCount: Invalid value: 2: " + masterCountReason},
		{name: "master count 4", mutate: func(c *wharfv1.Cluster) { c.Spec.MasterCount = 4 }, want: []wantErr{invalid("spec.masterCount")}},
		{name: "master count 9", mutate: func(c *wharfv1.Cluster) { c.Spec.MasterCount = 9 }, want: []wantErr{invalid("spec.masterCount")}},
		{name: "master count 3", mutate: func(c *wharfv1.Cluster) { c.Spec.MasterCount = 3 }},
		{name: "master count 7", mutate: func(c *wharfv1.Cluster) { c.Spec.MasterCount = 7 }},
		{name: "node count -1", mutate: func(c *wharfv1.Cluster) { c.Spec.NodeCount = -1 }, want: []wantErr{invalid("spec.nodeCount")}},
		{name: "no template", mutate: func(c *wharfv1.Cluster) { c.Spec.Template = "" }, want: []wantErr{required("spec.template")}},
		{name: "template path", mutate: func(c *wharfv1.Cluster) { c.Spec.Template = "a/b/c" }, want: []wantErr{invalid("spec.template")}},
		{name: "template name", mutate: func(c *wharfv1.Cluster) { c.Spec.Template = "ops/K8s" }, want: []wantErr{invalid("spec.template")}},
		{name: "name not a DNS label", mutate: func(c *wharfv1.Cluster) { c.Name = "demo.1" }, want: []wantErr{invalid("metadata.name")}},
		{name: "name starts with a digit", mutate: func(c *wharfv1.Cluster) { c.Name = "1demo" }, want: []wantErr{invalid("metadata.name")}},
		{name: "name too long for host names", mutate: func(c *wharfv1.Cluster) { c.Name = strings.Repeat("a", 41) }, want: []wantErr{tooLong("metadata.name")}},
		{name: "timeout", mutate: func(c *wharfv1.Cluster) { c.Spec.CreateTimeout = &metav1.Duration{} }, want: []wantErr{invalid("spec.createTimeout")}},
		{name: "labels", mutate: func(c *wharfv1.Cluster) { c.Spec.Labels = map[string]string{"": "x"} }, want: []wantErr{invalid("spec.labels[]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster()
			Clusters().Default(c)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			errs := Clusters().Validate(c)
			checkErrs(t, errs, tt.want...)
			if tt.detail != "" && (len(errs) == 0 || errs[0].Error() != tt.detail) {
				t.Errorf("first error %v, want %q", errs, tt.detail)
			}
		})
	}
}

func TestClusterUpdateAndStatusValidation(t *testing.T) {
	old := newCluster()
	Clusters().Default(old)
	tests := []struct {
		name   string
		mutate func(*wharfv1.Cluster)
		want   []wantErr
	}{
		{name: "resize and relabel", mutate: func(c *wharfv1.Cluster) { c.Spec.NodeCount = 5; c.Spec.Labels = map[string]string{"a": "b"} }},
		{name: "template", mutate: func(c *wharfv1.Cluster) { c.Spec.Template = "other" }, want: []wantErr{invalid("spec.template")}},
		{name: "masters", mutate: func(c *wharfv1.Cluster) { c.Spec.MasterCount = 3 }, want: []wantErr{invalid("spec.masterCount")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := old.DeepCopy()
			tt.mutate(c)
			checkErrs(t, Clusters().ValidateUpdate(c, old), tt.want...)
		})
	}
	// Recover: accepted only while the quorum is said lost.
	ha := old.DeepCopy()
	ha.Spec.MasterCount = 3
	lost := ha.DeepCopy()
	lost.Status.HealthStatus = wharfv1.HealthUnhealthy
	lost.Status.HealthStatusReason = map[string]string{"etcd": QuorumLostReason + ": 1 of 3 members"}
	healthy := ha.DeepCopy()
	healthy.Status.HealthStatusReason = map[string]string{"etcd": "3 of 3 members up"}
	deleting := lost.DeepCopy()
	deleting.DeletionTimestamp = ptr.To(ago(time.Second))
	recovers := []struct {
		name string
		old  *wharfv1.Cluster
		to   string
		want []wantErr
	}{
		{name: "quorum lost", old: lost, to: "r1"},
		{name: "healthy", old: healthy, to: "r1", want: []wantErr{forbidden("spec.recover")}},
		{name: "health unknown yet", old: ha, to: "r1", want: []wantErr{forbidden("spec.recover")}},
		{name: "one master", old: old, to: "r1", want: []wantErr{forbidden("spec.recover")}},
		{name: "being deleted", old: deleting, to: "r1", want: []wantErr{forbidden("spec.recover")}},
		{name: "cleared", old: func() *wharfv1.Cluster { c := lost.DeepCopy(); c.Spec.Recover = "r0"; return c }(), to: "", want: []wantErr{invalid("spec.recover")}},
	}
	for _, tt := range recovers {
		t.Run("recover "+tt.name, func(t *testing.T) {
			c := tt.old.DeepCopy()
			c.Spec.Recover = tt.to
			checkErrs(t, Clusters().ValidateUpdate(c, tt.old), tt.want...)
		})
	}
	statuses := []struct {
		name   string
		status wharfv1.ClusterStatus
		want   []wantErr
	}{
		{name: "creating", status: wharfv1.ClusterStatus{Status: wharfv1.StatusCreateInProgress, HealthStatus: wharfv1.HealthUnknown}},
		{name: "unknown status", status: wharfv1.ClusterStatus{Status: "RUNNING"}, want: []wantErr{notSupported("status.status")}},
		{name: "unknown health", status: wharfv1.ClusterStatus{HealthStatus: "OK"}, want: []wantErr{notSupported("status.healthStatus")}},
		{name: "failure without reason", status: wharfv1.ClusterStatus{Status: wharfv1.StatusCreateFailed}, want: []wantErr{required("status.statusReason")}},
	}
	for _, tt := range statuses {
		t.Run("status "+tt.name, func(t *testing.T) {
			c := old.DeepCopy()
			c.Status = tt.status
			checkErrs(t, Clusters().ValidateStatus(c, old), tt.want...)
		})
	}
}

func TestClusterRow(t *testing.T) {
	c := newCluster(func(c *wharfv1.Cluster) { c.CreationTimestamp = ago(3 * time.Minute) })
	Clusters().Default(c)
	if diff := cmp.Diff([]any{"demo", "<none>", "<none>", int64(1), int64(2), "<none>", "3m", "k8s-local"}, clusterRow(c, testNow)); diff != "" {
		t.Errorf("new cluster row (-want +got):\n%s", diff)
	}
	c.Status = wharfv1.ClusterStatus{Status: wharfv1.StatusCreateComplete, HealthStatus: wharfv1.HealthHealthy, APIAddress: "https://10.123.0.2:6443"}
	if diff := cmp.Diff([]any{"demo", "CREATE_COMPLETE", "HEALTHY", int64(1), int64(2), "https://10.123.0.2:6443", "3m", "k8s-local"}, clusterRow(c, testNow)); diff != "" {
		t.Errorf("ready cluster row (-want +got):\n%s", diff)
	}
}

// memObjects is an in-memory Objects for the admission hooks.
type memObjects map[schema.GroupVersionResource][]runtime.Object

func (m memObjects) Get(_ context.Context, gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, error) {
	for _, o := range m[gvr] {
		if a := o.(metav1.Object); a.GetNamespace() == namespace && a.GetName() == name {
			return o, nil
		}
	}
	return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
}

func (m memObjects) List(_ context.Context, gvr schema.GroupVersionResource, namespace string) ([]runtime.Object, error) {
	var out []runtime.Object
	for _, o := range m[gvr] {
		if namespace == "" || o.(metav1.Object).GetNamespace() == namespace {
			out = append(out, o)
		}
	}
	return out, nil
}

func TestClusterAdmitAndDelete(t *testing.T) {
	tpl := func(ns, name string, public bool) runtime.Object {
		return &wharfv1.ClusterTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: wharfv1.ClusterTemplateSpec{Public: public}}
	}
	objs := memObjects{wharfv1.SchemeGroupVersion.WithResource("clustertemplates"): {
		tpl("default", "k8s-local", false), tpl("ops", "shared", true), tpl("ops", "private", false),
	}}
	for _, tt := range []struct{ template, wantErr string }{
		{"k8s-local", ""},
		{"ops/shared", ""},
		{"ops/private", `cluster template "ops/private" not found in project "default"`},
		{"missing", `cluster template "missing" not found in project "default"`},
	} {
		t.Run(tt.template, func(t *testing.T) {
			err := Clusters().Admit(context.Background(), newCluster(func(c *wharfv1.Cluster) { c.Spec.Template = tt.template }), nil, objs)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.template: Invalid value: \""+tt.template+"\": "+tt.wantErr)):
				t.Fatalf("got %v, want 422 on spec.template: %s", err, tt.wantErr)
			}
		})
	}
	for status, refused := range map[string]bool{"": false, wharfv1.StatusCreateInProgress: true, wharfv1.StatusCreateFailed: false, wharfv1.StatusUpdateInProgress: false} {
		c := newCluster(func(c *wharfv1.Cluster) { c.Status.Status = status })
		if err := Clusters().ValidateDelete(context.Background(), c, objs); apierrors.IsConflict(err) != refused {
			t.Errorf("delete in status %q: %v, refused %v", status, err, refused)
		}
	}
}
