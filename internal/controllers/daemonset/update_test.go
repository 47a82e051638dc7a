package daemonset

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// rollingEnv has n nodes each running an available pod of an older
// revision of a DaemonSet with strategy ru.
func rollingEnv(t *testing.T, nodes []string, ru appsv1.RollingUpdateDaemonSet) *env {
	t.Helper()
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, node(n, nil))
	}
	objs = append(objs, newDS("ds", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.RollingUpdate = &ru }))
	e := newEnv(t, objs...)
	ds := e.getDS("ds")
	for _, n := range nodes {
		p := daemonPod(ds, "old-"+n, n, "old", v1.PodRunning, true)
		p.Labels[labelTemplateGeneration] = "0"
		e.create(p)
	}
	return e
}

// step syncs once and returns the pods created and deleted, by node.
func (e *env) step() (created, deleted []string) {
	e.t.Helper()
	before := map[string]string{}
	for _, p := range e.pods() {
		n, _ := targetNodeName(&p)
		before[p.Name] = n
	}
	e.mustSync("ds")
	after := map[string]bool{}
	for _, p := range e.pods() {
		after[p.Name] = true
		if _, ok := before[p.Name]; !ok {
			n, _ := targetNodeName(&p)
			created = append(created, n)
		}
	}
	for name, n := range before {
		if !after[name] {
			deleted = append(deleted, n)
		}
	}
	slices.Sort(created)
	slices.Sort(deleted)
	return created, deleted
}

// readyAll makes every pod Running and Ready, as agents would.
func (e *env) readyAll() {
	for _, p := range e.pods() {
		if !isReadyStatus(p.Status) {
			e.setPodStatus(p.Name, v1.PodRunning, true)
		}
	}
}

func isReadyStatus(s v1.PodStatus) bool {
	for _, c := range s.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func TestRollingUpdateMaxUnavailable(t *testing.T) {
	e := rollingEnv(t, []string{"a", "b", "c", "d"}, appsv1.RollingUpdateDaemonSet{
		MaxUnavailable: ptr(intstr.FromInt32(2)), MaxSurge: ptr(intstr.FromInt32(0)),
	})
	// Two old pods go at once; their nodes get new pods on the next sync;
	// nothing more goes until those are available.
	_, emptied := e.step()
	if len(emptied) != 2 {
		t.Fatalf("first sync deleted %v, want 2 pods", emptied)
	}
	created, deleted := e.step()
	if !slices.Equal(created, emptied) || len(deleted) != 0 {
		t.Fatalf("second sync created %v deleted %v, want new pods on the 2 emptied nodes", created, deleted)
	}
	if created, deleted := e.step(); len(created)+len(deleted) != 0 {
		t.Fatalf("sync with unavailable new pods created %v deleted %v, want nothing", created, deleted)
	}
	e.readyAll()
	if _, deleted := e.step(); len(deleted) != 2 {
		t.Fatalf("after new pods are available deleted %v, want the 2 remaining old pods", deleted)
	}
	e.step()
	e.readyAll()
	e.step()
	ds := e.getDS("ds")
	if s := ds.Status; s.UpdatedNumberScheduled != 4 || s.NumberAvailable != 4 || s.DesiredNumberScheduled != 4 {
		t.Errorf("status after the rollout = %+v", s)
	}
	for _, p := range e.pods() {
		if p.Labels[labelRevisionHash] != currentHash(ds) {
			t.Errorf("pod %s still at revision %q", p.Name, p.Labels[labelRevisionHash])
		}
	}
}

func TestRollingUpdateSurge(t *testing.T) {
	e := rollingEnv(t, []string{"a", "b", "c"}, appsv1.RollingUpdateDaemonSet{
		MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromInt32(1)),
	})
	// A new pod beside one old pod, no deletion.
	created, deleted := e.step()
	if len(created) != 1 || len(deleted) != 0 {
		t.Fatalf("first sync created %v deleted %v, want one surge pod", created, deleted)
	}
	surged := created[0]
	if created, deleted := e.step(); len(created)+len(deleted) != 0 {
		t.Fatalf("sync with the surge pod unavailable created %v deleted %v, want nothing", created, deleted)
	}
	// Once the new pod is available its node's old pod goes, and the
	// next node surges: in the same sync when that node is visited after
	// the first (nodes are visited in map order, as upstream), else in
	// the next.
	e.readyAll()
	created, deleted = e.step()
	if !slices.Equal(deleted, []string{surged}) || len(created) > 1 {
		t.Fatalf("after the surge pod is available created %v deleted %v, want the old pod of %s deleted", created, deleted, surged)
	}
	if len(created) == 0 {
		created, deleted = e.step()
	} else {
		deleted = nil // the old pod of surged, checked above
	}
	if len(created) != 1 || created[0] == surged || len(deleted) != 0 {
		t.Fatalf("next surge created %v deleted %v, want one surge pod on another node", created, deleted)
	}
	for range 6 {
		e.readyAll()
		e.step()
	}
	ds := e.getDS("ds")
	if got := len(e.pods()); got != 3 {
		t.Errorf("%d pods after the rollout, want 3", got)
	}
	if s := ds.Status; s.UpdatedNumberScheduled != 3 || s.NumberAvailable != 3 {
		t.Errorf("status after the rollout = %+v", s)
	}
}

func TestOnDeleteKeepsOldPods(t *testing.T) {
	e := newEnv(t, node("a", nil), newDS("ds", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}))
	p := daemonPod(e.getDS("ds"), "old-a", "a", "old", v1.PodRunning, true)
	p.Labels[labelTemplateGeneration] = "0"
	e.create(p)
	if created, deleted := e.step(); len(created)+len(deleted) != 0 {
		t.Fatalf("OnDelete sync created %v deleted %v, want nothing", created, deleted)
	}
	if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, "old-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.step()
	pods := e.pods()
	if len(pods) != 1 || pods[0].Labels[labelRevisionHash] != currentHash(e.getDS("ds")) {
		t.Errorf("after deleting the old pod: %d pods, want one of the current revision", len(pods))
	}
}

func TestHistory(t *testing.T) {
	e := newEnv(t, node("a", nil), newDS("ds", func(ds *appsv1.DaemonSet) { ds.Spec.RevisionHistoryLimit = ptr(int32(1)) }))
	e.mustSync("ds")
	revisions := func() []appsv1.ControllerRevision {
		l, err := e.cs.AppsV1().ControllerRevisions(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(l.Items, func(a, b appsv1.ControllerRevision) int { return int(a.Revision - b.Revision) })
		return l.Items
	}
	rs := revisions()
	ds := e.getDS("ds")
	if len(rs) != 1 || rs[0].Revision != 1 || rs[0].Name != "ds-"+currentHash(ds) || !metav1.IsControlledBy(&rs[0], ds) {
		t.Fatalf("revisions after the first sync: %+v", rs)
	}
	// The stored patch puts the template back, as kubectl rollout undo
	// sends it.
	setImage := func(image string) {
		ds := e.getDS("ds")
		ds.Spec.Template.Spec.Containers[0].Image = image
		if _, err := e.cs.AppsV1().DaemonSets(ns).Update(e.ctx, ds, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setImage("testapp:2")
	e.mustSync("ds")
	e.mustSync("ds")
	rs = revisions()
	if len(rs) != 2 || rs[1].Revision != 2 {
		t.Fatalf("revisions after an update: %d, last %d", len(rs), rs[len(rs)-1].Revision)
	}
	undone := undo(t, e.getDS("ds"), rs[0].Data.Raw)
	if img := undone.Spec.Template.Spec.Containers[0].Image; img != "testapp:1" {
		t.Errorf("revision 1 patch gives image %q", img)
	}

	// A third template: the oldest revision beyond the limit goes once no
	// pod runs it.
	setImage("testapp:3")
	for _, p := range e.pods() {
		if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.mustSync("ds")
	e.mustSync("ds")
	var got []int64
	for _, r := range revisions() {
		got = append(got, r.Revision)
	}
	if diff := cmp.Diff([]int64{2, 3}, got); diff != "" {
		t.Errorf("revisions kept (-want +got):\n%s", diff)
	}

	// Back to testapp:2: its revision is renumbered the newest.
	setImage("testapp:2")
	e.mustSync("ds")
	got = nil
	for _, r := range revisions() {
		got = append(got, r.Revision)
	}
	if diff := cmp.Diff([]int64{3, 4}, got); diff != "" {
		t.Errorf("revisions after rolling back (-want +got):\n%s", diff)
	}
}

func undo(t *testing.T, ds *appsv1.DaemonSet, patch []byte) *appsv1.DaemonSet {
	t.Helper()
	cur, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	out, err := strategicpatch.StrategicMergePatch(cur, patch, &appsv1.DaemonSet{})
	if err != nil {
		t.Fatalf("apply revision patch: %v", err)
	}
	var res appsv1.DaemonSet
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func TestNewPod(t *testing.T) {
	ds := newDS("agent", func(ds *appsv1.DaemonSet) {
		ds.UID = "uid-1"
		ds.Spec.Template.Spec.HostNetwork = true
		ds.Spec.Template.Spec.Tolerations = []v1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(5))}}
		ds.Spec.Template.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpExists}},
			}}},
		}}
	})
	pod := newPod(ds, "n1", "h1")
	if pod.GenerateName != "agent-" || pod.Labels[labelRevisionHash] != "h1" || pod.Labels[labelTemplateGeneration] != "1" || pod.Labels["app"] != "agent" {
		t.Errorf("pod meta: generateName %q labels %v", pod.GenerateName, pod.Labels)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.Kind != "DaemonSet" || ref.UID != "uid-1" {
		t.Errorf("controller ref %+v", ref)
	}
	wantAffinity := &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
		MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"n1"}}},
	}}}
	if diff := cmp.Diff(wantAffinity, pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution); diff != "" {
		t.Errorf("affinity (-want +got):\n%s", diff)
	}
	var got []string
	for _, tol := range pod.Spec.Tolerations {
		got = append(got, tol.Key+":"+string(tol.Effect))
		if tol.TolerationSeconds != nil {
			t.Errorf("toleration %s keeps tolerationSeconds: the default replaces an equal one", tol.Key)
		}
	}
	want := []string{
		"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute",
		"node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
		"node.kubernetes.io/pid-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule",
		"node.kubernetes.io/network-unavailable:NoSchedule",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tolerations (-want +got):\n%s", diff)
	}
	// The template is left alone.
	if len(ds.Spec.Template.Spec.Tolerations) != 1 || ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields != nil {
		t.Error("newPod changed the DaemonSet's template")
	}
}
