package daemonset

import (
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeEvents runs the controller's workers: a node added gets its pod
// from the node event alone, a node relabelled out of the selector loses
// it, a heartbeat-like status change does nothing.
func TestNodeEvents(t *testing.T) {
	e := newEnv(t, node("a", map[string]string{"pool": "x"}), newDS("ds", func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "x"}
	}))
	var wg sync.WaitGroup
	wg.Go(func() { e.c.Run(e.ctx, 2) })
	t.Cleanup(func() { e.cancel(); wg.Wait() })

	waitNodes := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := e.podNodes()
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("pods on %v, want %v", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitNodes("a")
	e.create(node("b", map[string]string{"pool": "x"}))
	waitNodes("a", "b")
	e.create(node("c", map[string]string{"pool": "y"}))

	b, err := e.cs.CoreV1().Nodes().Get(e.ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Labels["pool"] = "y"
	if _, err := e.cs.CoreV1().Nodes().Update(e.ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNodes("a")
}
