package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestSchedulerBindsPendingPods(t *testing.T) {
	nodes := []*corev1.Node{
		makeNode("a", "2", "4Gi", 10),
		makeNode("b", "2", "4Gi", 10, withLabel("disk", "ssd")),
		makeNode("c", "2", "4Gi", 10, withTaint("dedicated", "db", corev1.TaintEffectNoSchedule)),
	}
	req := withContainer("cpu", "100m", "memory", "64Mi")
	other := makePod("other", req)
	other.Spec.SchedulerName = "another-scheduler"
	gated := makePod("gated", req)
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "wait"}}
	preBound := bound(makePod("prebound", withContainer("cpu", "1900m")), "a")
	pods := []*corev1.Pod{
		makePod("p1", req), makePod("p2", req), makePod("p3", req), makePod("p4", req),
		makePod("ssd", req, withNodeSelector("disk", "ssd")),
		makePod("db", req, withNodeSelector("dedicated", "db"), withToleration("dedicated", corev1.TolerationOpEqual, "db", "")),
		other, gated, preBound,
	}
	for _, n := range nodes[2:] {
		n.Labels["dedicated"] = "db"
	}
	h := startHarness(t, nil, objects(nodes, pods...))

	got := h.waitBound(t, "p1", "p2", "p3", "p4", "ssd", "db")
	for _, name := range []string{"p1", "p2", "p3", "p4"} {
		if got[name] != "b" {
			// a is nearly full (prebound) and c is tainted: only b is left.
			t.Errorf("pod %s on %s, want b", name, got[name])
		}
	}
	if diff := cmp.Diff(map[string]string{"ssd": "b", "db": "c"}, map[string]string{"ssd": got["ssd"], "db": got["db"]}); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
	// The gated pod is popped neither before nor after the others.
	waitFor(t, "the queue to settle", func() bool {
		active, backoff, unsched := h.sched.queue.lengths()
		return active+backoff+unsched == 0
	})
	for _, name := range []string{"other", "gated", "prebound"} {
		if n := h.bindAttempts(name); n != 0 {
			t.Errorf("pod %s: %d bind calls, want none", name, n)
		}
	}
	for _, name := range []string{"p1", "p2", "p3", "p4", "ssd", "db"} {
		if n := h.bindAttempts(name); n != 1 {
			t.Errorf("pod %s: %d bind calls, want 1", name, n)
		}
	}
	bindings := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "create" && a.GetSubresource() == "binding" {
			bindings++
		}
	}
	if bindings != 6 {
		t.Errorf("%d binding actions recorded, want 6", bindings)
	}
}

func TestSchedulerUnschedulablePod(t *testing.T) {
	nodes := []*corev1.Node{
		makeNode("a", "1", "4Gi", 10),
		makeNode("b", "1", "4Gi", 10, withTaint("node.kubernetes.io/unreachable", "", corev1.TaintEffectNoExecute)),
	}
	// Retry rarely so that only the node event below can wake the pod.
	h := startHarness(t, nil, objects(nodes, makePod("big", withContainer("cpu", "2"))),
		WithUnschedulableRetry(time.Hour), WithBackoff(10*time.Millisecond, 20*time.Millisecond))

	const msg = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
	if diff := cmp.Diff("Warning FailedScheduling "+msg, h.nextEvent(t, "FailedScheduling")); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	waitFor(t, "the PodScheduled condition", func() bool { return scheduledCondition(h.pod(t, "big")) != nil })
	cond := scheduledCondition(h.pod(t, "big"))
	want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: msg}
	if diff := cmp.Diff(want, *cond, cmpIgnoreTime); diff != "" {
		t.Errorf("condition (-want +got):\n%s", diff)
	}

	// A bigger node arrives: the pod is moved back and bound.
	if _, err := h.client.CoreV1().Nodes().Create(t.Context(), makeNode("big", "4", "8Gi", 10), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"big": "big"}, h.waitBound(t, "big")); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
}

var cmpIgnoreTime = cmp.FilterPath(func(p cmp.Path) bool {
	return p.Last().String() == ".LastTransitionTime" || p.Last().String() == ".LastProbeTime"
}, cmp.Ignore())

func TestSchedulerRetriesFailedBind(t *testing.T) {
	fail := func(pod string, attempt int) error {
		if attempt <= 2 {
			return apierrors.NewInternalError(fmt.Errorf("etcd hiccup %d", attempt))
		}
		return nil
	}
	h := startHarness(t, fail, objects([]*corev1.Node{makeNode("a", "2", "4Gi", 10)}, makePod("p")),
		WithBackoff(time.Millisecond, 2*time.Millisecond))
	h.waitBound(t, "p")
	if n := h.bindAttempts("p"); n != 3 {
		t.Errorf("%d bind calls, want 3", n)
	}
	h.nextEvent(t, "Binding rejected")
	h.sched.cache.mu.Lock()
	defer h.sched.cache.mu.Unlock()
	if n := h.sched.cache.nodes["a"].pods; n != 1 {
		t.Errorf("node a counts %d pods after the failed binds, want 1", n)
	}
}

func TestSchedulerDropsLostRaces(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{name: "already bound", err: apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", fmt.Errorf("already assigned"))},
		{name: "pod gone", err: apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "p")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fail := func(string, int) error { return tc.err }
			// A retried pod would sit in back-off for an hour and keep the
			// queue non-empty, so an empty queue proves it was dropped.
			h := startHarness(t, fail, objects([]*corev1.Node{makeNode("a", "2", "4Gi", 10)}, makePod("p")),
				WithBackoff(time.Hour, time.Hour))
			waitFor(t, "the bind attempt", func() bool { return h.bindAttempts("p") == 1 })
			waitFor(t, "the pod to leave queue and cache", func() bool {
				return !h.sched.queue.has("default/p") && !h.sched.cache.has("default/p")
			})
		})
	}
}

func TestSchedulerForgetsDeletedPendingPod(t *testing.T) {
	h := startHarness(t, nil, objects([]*corev1.Node{makeNode("a", "1", "4Gi", 10)}, makePod("big", withContainer("cpu", "2"))),
		WithUnschedulableRetry(time.Hour), WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	h.nextEvent(t, "FailedScheduling")
	if err := h.client.CoreV1().Pods("default").Delete(t.Context(), "big", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod to leave the queue", func() bool { return !h.sched.queue.has("default/big") })
}

// TestSchedulerFreedRoomWakesPods checks that deleting a bound pod moves an
// unschedulable one back to the active queue.
func TestSchedulerFreedRoomWakesPods(t *testing.T) {
	h := startHarness(t, nil,
		objects([]*corev1.Node{makeNode("a", "1", "4Gi", 10)},
			bound(makePod("old", withContainer("cpu", "800m")), "a"),
			makePod("new", withContainer("cpu", "500m"))),
		WithUnschedulableRetry(time.Hour), WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	h.nextEvent(t, "0/1 nodes are available: 1 Insufficient cpu.")
	if err := h.client.CoreV1().Pods("default").Delete(t.Context(), "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"new": "a"}, h.waitBound(t, "new")); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
}
