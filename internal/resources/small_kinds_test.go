package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestLease(t *testing.T) {
	newLease := func() *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptrTo("node-1"), LeaseDurationSeconds: ptrTo(int32(40))},
		}
	}
	tests := []struct {
		name   string
		mutate func(*coordinationv1.Lease)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*coordinationv1.Lease) {}},
		{name: "zero duration", mutate: func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = ptrTo(int32(0)) }, want: []wantErr{invalid("spec.leaseDurationSeconds")}},
		{name: "negative transitions", mutate: func(l *coordinationv1.Lease) { l.Spec.LeaseTransitions = ptrTo(int32(-1)) }, want: []wantErr{invalid("spec.leaseTransitions")}},
		{name: "preferred holder without strategy", mutate: func(l *coordinationv1.Lease) { l.Spec.PreferredHolder = ptrTo("node-2") },
			want: []wantErr{forbidden("spec.preferredHolder")}},
		{name: "strategy unknown", mutate: func(l *coordinationv1.Lease) {
			l.Spec.Strategy = ptrTo(coordinationv1.CoordinatedLeaseStrategy("Youngest"))
		},
			want: []wantErr{notSupported("spec.strategy")}},
		{name: "custom strategy", mutate: func(l *coordinationv1.Lease) {
			l.Spec.Strategy = ptrTo(coordinationv1.CoordinatedLeaseStrategy("example.com/mine"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLease()
			tt.mutate(l)
			checkErrs(t, Leases().Validate(l), tt.want...)
		})
	}
	l := newLease()
	l.CreationTimestamp = ago(20 * time.Second)
	if diff := cmp.Diff([]any{"node-1", "node-1", "20s"}, leaseRow(l, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestServiceAccount(t *testing.T) {
	sa := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default", CreationTimestamp: ago(48 * time.Hour)},
		Secrets:    []corev1.ObjectReference{{Name: "default-token"}},
	}
	r := ServiceAccounts()
	checkErrs(t, r.Validate(sa))
	bad := sa.DeepCopy()
	bad.Name = "Default"
	checkErrs(t, r.Validate(bad), invalid("metadata.name"))
	bad = sa.DeepCopy()
	bad.ImagePullSecrets = []corev1.LocalObjectReference{{}}
	checkErrs(t, r.Validate(bad), required("imagePullSecrets[0].name"))
	if diff := cmp.Diff([]any{"default", int64(1), "2d"}, serviceAccountRow(sa, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestConfigMap(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"a": "1"}, Immutable: ptrTo(true)}
	r := ConfigMaps()
	checkErrs(t, r.Validate(cm))
	changed := cm.DeepCopy()
	changed.Data["a"] = "2"
	checkErrs(t, r.ValidateUpdate(changed, cm), forbidden("data"))
	changed = cm.DeepCopy()
	changed.Immutable = nil
	checkErrs(t, r.ValidateUpdate(changed, cm), forbidden("immutable"))
	cm.CreationTimestamp = ago(5 * time.Minute)
	if diff := cmp.Diff([]any{"cfg", int64(1), "5m"}, configMapRow(cm, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestControllerRevision(t *testing.T) {
	r := ControllerRevisions()
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f", Namespace: "default", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", UID: "u1", Controller: ptrTo(true)},
		}},
		Data:     runtime.RawExtension{Raw: []byte(`{"spec":{}}`)},
		Revision: 2,
	}
	if errs := r.Validate(rev); len(errs) != 0 {
		t.Fatalf("valid revision: %v", errs)
	}
	bad := rev.DeepCopy()
	bad.Data = runtime.RawExtension{}
	bad.Revision = -1
	if errs := r.Validate(bad); len(errs) != 2 {
		t.Errorf("no data, negative revision: %v, want 2 errors", errs)
	}
	changed := rev.DeepCopy()
	changed.Data.Raw = []byte(`{"spec":{"x":1}}`)
	if errs := r.ValidateUpdate(changed, rev); len(errs) != 1 {
		t.Errorf("changed data: %v, want 1 error", errs)
	}
	if errs := r.ValidateUpdate(rev.DeepCopy(), rev); len(errs) != 0 {
		t.Errorf("unchanged: %v", errs)
	}
	row := r.Row(rev)
	if row[1] != "statefulset.apps/web" || row[2] != int64(2) {
		t.Errorf("row %v, want controller statefulset.apps/web and revision 2", row)
	}
}
