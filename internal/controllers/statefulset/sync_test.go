package statefulset

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func newImage(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "testapp:2" }

func TestSync(t *testing.T) {
	tests := []struct {
		name string
		set  *appsv1.StatefulSet
		run  func(t *testing.T, e *env)
	}{
		{name: "OrderedReady creates in order, each waiting for the previous to be ready", set: newSet(3), run: func(t *testing.T, e *env) {
			e.step()
			e.step() // web-0 is not running yet: nothing more
			want(t, e.podNames(), "web-0@1")
			e.ready("web-0")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1")
			e.setPhase(v1.PodPending, "web-1")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1")
			e.ready("web-1")
			e.step()
			e.ready("web-2")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+", "web-2@1+")
			s := e.set().Status
			rev := s.UpdateRevision
			if s.Replicas != 3 || s.ReadyReplicas != 3 || s.AvailableReplicas != 3 || s.CurrentReplicas != 3 || s.UpdatedReplicas != 3 ||
				s.CurrentRevision != rev || s.ObservedGeneration != 1 || s.CollisionCount == nil {
				t.Errorf("status %+v", s)
			}
			p := e.pod("web-1")
			wantLabels := map[string]string{"app": "web", appsv1.StatefulSetPodNameLabel: "web-1", appsv1.PodIndexLabel: "1", appsv1.ControllerRevisionHashLabelKey: rev}
			if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if p.Spec.Hostname != "web-1" || p.Spec.Subdomain != "web" {
				t.Errorf("hostname %q subdomain %q, want web-1 and web", p.Spec.Hostname, p.Spec.Subdomain)
			}
			if ref := metav1.GetControllerOf(p); ref == nil || ref.Kind != "StatefulSet" || ref.UID != "set-uid" {
				t.Errorf("controller %+v", ref)
			}
			want(t, e.events("SuccessfulCreate"), "create Pod web-0 in StatefulSet web successful",
				"create Pod web-1 in StatefulSet web successful", "create Pod web-2 in StatefulSet web successful")
		}},
		{name: "Parallel creates all at once", set: newSet(3, func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }), run: func(t *testing.T, e *env) {
			e.step()
			want(t, e.podNames(), "web-0@1", "web-1@1", "web-2@1")
		}},
		{name: "ordinals start", set: newSet(2, func(s *appsv1.StatefulSet) {
			s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
		}), run: func(t *testing.T, e *env) {
			e.step()
			want(t, e.podNames(), "web-5@1", "web-6@1")
		}},
		{name: "scale down removes the highest ordinal first, one at a time", set: newSet(3), run: func(t *testing.T, e *env) {
			e.converge()
			e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(1)) })
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+")
			e.step()
			want(t, e.podNames(), "web-0@1+")
			want(t, e.events("SuccessfulDelete"), "delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful")
		}},
		{name: "OrderedReady scale down waits for an unready pod", set: newSet(3), run: func(t *testing.T, e *env) {
			e.converge()
			e.setPhase(v1.PodPending, "web-0")
			e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(1)) })
			e.step()
			want(t, e.podNames(), "web-0@1", "web-1@1+", "web-2@1+")
		}},
		{name: "Parallel scale down removes all at once", set: newSet(3, func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }), run: func(t *testing.T, e *env) {
			e.converge()
			e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(0)) })
			e.step()
			want(t, e.podNames())
		}},
		{name: "rolling update goes down from the highest ordinal and stops at the partition", set: newSet(3), run: func(t *testing.T, e *env) {
			e.converge()
			e.updateSet(func(s *appsv1.StatefulSet) {
				newImage(s)
				s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(int32(2))
			})
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+", "web-2@2")
			if img := e.pod("web-2").Spec.Containers[0].Image; img != "testapp:2" {
				t.Errorf("web-2 runs %s", img)
			}
			e.ready("web-2")
			e.step()
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+", "web-2@2+")
			s := e.set().Status
			if s.CurrentReplicas != 2 || s.UpdatedReplicas != 1 || s.CurrentRevision == s.UpdateRevision {
				t.Errorf("partitioned status %+v", s)
			}
			// A pod below the partition that is deleted comes back at the
			// current revision.
			e.deletePod("web-0")
			e.step()
			want(t, e.podNames(), "web-0@1", "web-1@1+", "web-2@2+")
			e.ready("web-0")
			e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(int32(0)) })
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-2@2+")
			e.converge()
			s = e.set().Status
			if s.CurrentReplicas != 3 || s.UpdatedReplicas != 3 || s.CurrentRevision != s.UpdateRevision {
				t.Errorf("completed status %+v", s)
			}
		}},
		{name: "rolling update waits for the updated pod to be ready", set: newSet(3), run: func(t *testing.T, e *env) {
			e.converge()
			e.updateSet(newImage)
			e.step()
			e.step()
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+", "web-2@2")
		}},
		{name: "maxUnavailable replaces that many pods at once", set: newSet(4, func(s *appsv1.StatefulSet) {
			s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
			s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromInt32(2))
		}), run: func(t *testing.T, e *env) {
			e.converge()
			e.updateSet(newImage)
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+", "web-2@2", "web-3@2")
			e.step() // two unavailable: nothing more
			want(t, e.podNames(), "web-0@1+", "web-1@1+", "web-2@2", "web-3@2")
			e.ready("web-3")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-2@2", "web-3@2+")
		}},
		{name: "OnDelete replaces only deleted pods", set: newSet(2, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}), run: func(t *testing.T, e *env) {
			e.converge()
			e.updateSet(newImage)
			e.step()
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1+")
			e.deletePod("web-1")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@2")
		}},
		{name: "a failed pod is deleted and recreated under its name", set: newSet(2), run: func(t *testing.T, e *env) {
			e.converge()
			old := e.pod("web-1").UID
			e.setPhase(v1.PodFailed, "web-1")
			e.step()
			want(t, e.podNames(), "web-0@1+")
			e.step()
			want(t, e.podNames(), "web-0@1+", "web-1@1")
			if e.pod("web-1").UID == old {
				t.Errorf("web-1 was not replaced")
			}
		}},
		{name: "orphans named after the set are adopted, others are not", set: newSet(1, func(s *appsv1.StatefulSet) {
			// OnDelete: a RollingUpdate would replace the adopted pod, of no
			// known revision.
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}), run: func(t *testing.T, e *env) {
			for _, name := range []string{"web-0", "other-0"} {
				p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
					Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "testapp:1"}}}}
				if _, err := e.cs.CoreV1().Pods(ns).Create(e.ctx, p, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			e.ready("web-0")
			e.step()
			if ref := metav1.GetControllerOf(e.pod("web-0")); ref == nil || ref.UID != "set-uid" {
				t.Errorf("web-0 not adopted: %+v", ref)
			}
			if ref := metav1.GetControllerOf(e.pod("other-0")); ref != nil {
				t.Errorf("other-0 adopted: %+v", ref)
			}
			e.step()
			if l := e.pod("web-0").Labels; l[appsv1.StatefulSetPodNameLabel] != "web-0" || l[appsv1.PodIndexLabel] != "0" {
				t.Errorf("adopted pod's labels %v", l)
			}
		}},
		{name: "history: revisions, rollback reuses the old revision", set: newSet(1), run: func(t *testing.T, e *env) {
			e.converge()
			first := e.set().Status.UpdateRevision
			e.updateSet(newImage)
			e.converge()
			e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "testapp:1" })
			e.converge()
			s := e.set().Status
			if s.UpdateRevision != first || s.CurrentRevision != first {
				t.Errorf("rollback: revision %s/%s, want %s", s.CurrentRevision, s.UpdateRevision, first)
			}
			revs, _ := e.cs.AppsV1().ControllerRevisions(ns).List(e.ctx, metav1.ListOptions{})
			got := map[string]int64{}
			for _, r := range revs.Items {
				got[r.Name] = r.Revision
			}
			if len(got) != 2 || got[first] != 3 {
				t.Errorf("revisions %v, want 2 with %s at 3", got, first)
			}
		}},
		{name: "revision history is truncated", set: newSet(1, func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptr.To(int32(1)) }), run: func(t *testing.T, e *env) {
			e.converge()
			for _, img := range []string{"testapp:2", "testapp:3", "testapp:4"} {
				e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = img })
				e.converge()
			}
			e.step()
			revs, _ := e.cs.AppsV1().ControllerRevisions(ns).List(e.ctx, metav1.ListOptions{})
			if len(revs.Items) != 2 {
				t.Errorf("%d revisions, want 2 (the live one and one of history)", len(revs.Items))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, start(t, tt.set))
		})
	}
}

func TestClaims(t *testing.T) {
	del, retain := appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	tests := []struct {
		name                  string
		whenDeleted, whenScal appsv1.PersistentVolumeClaimRetentionPolicyType
		// owners of data-web-1 while web-1 is wanted, and once scaled down
		wantOwners, wantScaledOwners []string
	}{
		{"Retain/Retain", retain, retain, nil, nil},
		{"WhenDeleted Delete", del, retain, []string{"StatefulSet/web"}, []string{"StatefulSet/web"}},
		{"WhenScaled Delete", retain, del, nil, []string{"Pod/web-1"}},
		{"Delete/Delete", del, del, []string{"StatefulSet/web"}, []string{"Pod/web-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, newSet(2, withClaims(tt.whenDeleted, tt.whenScal)))
			e.step()
			// The claim is created before its pod.
			var order []string
			for _, a := range e.cs.Actions() {
				if a.GetVerb() == "create" && a.GetResource().Resource != "statefulsets" {
					order = append(order, a.GetResource().Resource)
				}
			}
			want(t, order, "controllerrevisions", "persistentvolumeclaims", "pods")
			p := e.pod("web-0")
			vol := p.Spec.Volumes[0]
			if vol.Name != "data" || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != "data-web-0" {
				t.Errorf("pod volumes %+v", p.Spec.Volumes)
			}
			want(t, e.events("SuccessfulCreate"), "create Claim data-web-0 Pod web-0 in StatefulSet web success", "create Pod web-0 in StatefulSet web successful")
			e.converge()
			c := e.claim("data-web-1")
			want(t, owners(c), tt.wantOwners...)
			if c.Labels["app"] != "web" {
				t.Errorf("claim labels %v", c.Labels)
			}
			web1 := e.pod("web-1").UID
			e.updateSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(1)) })
			e.step()
			c = e.claim("data-web-1")
			want(t, owners(c), tt.wantScaledOwners...)
			for _, r := range c.OwnerReferences {
				if r.Kind == "Pod" && r.UID != web1 {
					t.Errorf("claim owned by pod uid %s, want %s", r.UID, web1)
				}
			}
			want(t, e.podNames(), "web-0@1+")
		})
	}
}

func (e *env) claim(name string) *v1.PersistentVolumeClaim {
	e.t.Helper()
	c, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get claim: %v", err)
	}
	return c
}

func owners(c *v1.PersistentVolumeClaim) []string {
	var out []string
	for _, r := range c.OwnerReferences {
		out = append(out, r.Kind+"/"+r.Name)
	}
	slices.Sort(out)
	return out
}

func want(t *testing.T, got []string, wantItems ...string) {
	t.Helper()
	if diff := cmp.Diff(wantItems, got, cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParentAndOrdinal(t *testing.T) {
	tests := []struct {
		name, parent string
		ord          int
	}{
		{"web-0", "web", 0}, {"my-db-12", "my-db", 12}, {"web", "", -1}, {"web-x", "", -1}, {"web-", "", -1},
	}
	for _, tt := range tests {
		parent, ord := parentAndOrdinal(tt.name)
		if parent != tt.parent || ord != tt.ord {
			t.Errorf("parentAndOrdinal(%q) = %q, %d; want %q, %d", tt.name, parent, ord, tt.parent, tt.ord)
		}
	}
}

func FuzzParentAndOrdinal(f *testing.F) {
	for _, s := range []string{"web-0", "a-b-99", "", "-1", "web-99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		parent, ord := parentAndOrdinal(name)
		if ord < 0 {
			return
		}
		set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: parent}}
		if got := podName(set, ord); len(got) > len(name) {
			t.Errorf("%q parsed as %q/%d, which names %q", name, parent, ord, got)
		}
	})
}

func TestFailedCreate(t *testing.T) {
	e := start(t, newSet(2))
	e.cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("exceeded quota")
	})
	e.settle()
	if err := e.c.sync(e.ctx, ns+"/web"); err == nil || !strings.Contains(err.Error(), "exceeded quota") {
		t.Errorf("sync error %v, want the create's", err)
	}
	want(t, e.events("FailedCreate"), "create Pod web-0 in StatefulSet web failed error: exceeded quota")
	want(t, e.podNames())
	if s := e.set().Status; s.ObservedGeneration != 1 || s.UpdateRevision == "" {
		t.Errorf("status not written on failure: %+v", s)
	}
}
