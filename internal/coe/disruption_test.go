package coe

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/testserver"
)

// TestResizeHonoursDisruptionBudgets shrinks a cluster whose Deployment
// has a PodDisruptionBudget. First the budget allows nothing: the drain
// waits (the node cordoned, its pod still running) until the budget is
// relaxed, then completes. Then the budget allows nothing again and the
// drain runs out of time: the host stays, the update fails with the
// budget's answer in the host's fault line, and the node has a
// DrainBlocked event.
func TestResizeHonoursDisruptionBudgets(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("p1", 3)
	cl := e.waitStatus("p1", wharfv1.StatusCreateComplete)
	kube := e.kube(cl)
	deploy(t, kube, "web", 2)
	podsOn := waitPods(t, kube, 2)
	setBudget(t, e, kube, 2)

	// Waits for the budget.
	victim := nodeWithPods(t, podsOn)
	shrink(t, e, 2, victim)
	testserver.WaitFor(t, victim+" cordoned", waitLong, func() (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(e.ctx, victim, metav1.GetOptions{})
		return err == nil && n.Spec.Unschedulable, nil
	})
	if on := waitPods(t, kube, 2); on[victim] == 0 {
		t.Fatalf("pods per node while the budget allows nothing: %v, want a pod still on %s", on, victim)
	}
	setBudget(t, e, kube, 1)
	e.waitFor("p1", "2 nodes, UPDATE_COMPLETE", func(cl *wharfv1.Cluster) bool {
		return cl.Status.Status == wharfv1.StatusUpdateComplete && len(cl.Status.NodeAddresses) == 2
	})
	if on := waitPods(t, kube, 2); on[victim] != 0 {
		t.Errorf("pods per node after the drain: %v, want none on %s", on, victim)
	}

	// Runs out of time: the host stays and the fault says why.
	e.stop()
	e.start(func(c *Config) { c.DrainTimeout = 2 * time.Second })
	podsOn = waitPods(t, kube, 2)
	setBudget(t, e, kube, 2)
	victim = nodeWithPods(t, podsOn)
	shrink(t, e, 1, victim)
	cl = e.waitStatus("p1", wharfv1.StatusUpdateFailed)
	fault := cl.Status.Faults[victim]
	if !strings.Contains(fault, "PodDisruptionBudget") || !strings.Contains(fault, "The disruption budget web needs 2 healthy pods and has 2 currently") {
		t.Errorf("faults %v, want %s's to name the budget's answer", cl.Status.Faults, victim)
	}
	if !slices.ContainsFunc(e.prov.All(), func(h provider.Host) bool { return h.Name == victim }) {
		t.Errorf("host %s removed despite the budget", victim)
	}
	events, err := kube.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events.Items, func(ev corev1.Event) bool {
		return ev.Reason == "DrainBlocked" && ev.InvolvedObject.Name == victim && ev.Type == corev1.EventTypeWarning
	}) {
		t.Errorf("no DrainBlocked event on node %s", victim)
	}
}

// setBudget creates or updates the web budget with minAvailable and waits
// until the disruption controller has observed it.
func setBudget(t *testing.T, e *testEnv, kube kubernetes.Interface, minAvailable int32) {
	t.Helper()
	pdbs := kube.PolicyV1().PodDisruptionBudgets("default")
	patch := fmt.Sprintf(`{"spec":{"minAvailable":%d}}`, minAvailable)
	if _, err := pdbs.Patch(e.ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		_, err = pdbs.Create(e.ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MinAvailable: ptr.To(intstr.FromInt32(minAvailable)),
				Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	testserver.WaitFor(t, "the budget observed", waitLong, func() (bool, error) {
		p, err := pdbs.Get(e.ctx, "web", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.DesiredHealthy == minAvailable && p.Status.CurrentHealthy == 2, nil
	})
}

func nodeWithPods(t *testing.T, podsOn map[string]int) string {
	t.Helper()
	for n, count := range podsOn {
		if count > 0 {
			return n
		}
	}
	t.Fatalf("no node runs a pod: %v", podsOn)
	return ""
}

// shrink sets the default worker group to count nodes, removing victim.
func shrink(t *testing.T, e *testEnv, count int32, victim string) {
	t.Helper()
	g := e.group("p1-default-worker")
	g.Spec.NodeCount, g.Spec.NodesToRemove = count, []string{victim}
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
