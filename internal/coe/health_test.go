package coe

import (
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
)

func TestHealth(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("h1", 2)
	cl := e.waitStatus("h1", wharfv1.StatusCreateComplete)
	ref := provider.ClusterRef{Namespace: ns, Name: "h1", UID: string(cl.UID)}

	// A worker's power is cut: its node goes NotReady, the cluster UNHEALTHY.
	if err := e.prov.PowerOff(e.ctx, ref, "h1-node-1"); err != nil {
		t.Fatal(err)
	}
	cl = e.waitFor("h1", "UNHEALTHY", func(cl *wharfv1.Cluster) bool { return cl.Status.HealthStatus == wharfv1.HealthUnhealthy })
	r := cl.Status.HealthStatusReason
	if r["api"] != "ok" || r["h1-node-0"] != readyReason || !strings.HasPrefix(r["h1-node-1"], "NotReady: ") {
		t.Errorf("healthStatusReason %v: want the api ok, h1-node-0 Ready, h1-node-1 NotReady with a reason", r)
	}
	if n := e.prov.Creates("h1-node-1"); n != 1 {
		t.Errorf("h1-node-1 created %d times without auto-healing, want 1", n)
	}

	// The master's: the API does not answer, the health is UNKNOWN.
	if err := e.prov.PowerOff(e.ctx, ref, "h1-master-0"); err != nil {
		t.Fatal(err)
	}
	cl = e.waitFor("h1", "UNKNOWN", func(cl *wharfv1.Cluster) bool { return cl.Status.HealthStatus == wharfv1.HealthUnknown })
	if r := cl.Status.HealthStatusReason; len(r) != 1 || r["api"] == "" {
		t.Errorf("healthStatusReason %v: want only why the api does not answer", r)
	}
}

// With auto_healing_enabled=true (from the template), a dead worker is
// replaced by a new host of the same name and the cluster is HEALTHY again.
func TestAutoHealing(t *testing.T) {
	e := newEnv(t, map[string]string{wharfv1.LabelAutoHealing: "true"})
	e.start()
	e.createCluster("a1", 2)
	cl := e.waitStatus("a1", wharfv1.StatusCreateComplete)
	ref := provider.ClusterRef{Namespace: ns, Name: "a1", UID: string(cl.UID)}
	healing := watchFault(t, e, "a1", "a1-node-1")

	if err := e.prov.PowerOff(e.ctx, ref, "a1-node-1"); err != nil {
		t.Fatal(err)
	}
	cl = e.waitFor("a1", "healed", func(cl *wharfv1.Cluster) bool {
		return e.prov.Creates("a1-node-1") == 2 && cl.Status.Status == wharfv1.StatusUpdateComplete &&
			cl.Status.HealthStatus == wharfv1.HealthHealthy && cl.Status.HealthStatusReason["a1-node-1"] == readyReason
	})
	if f := healing(); !strings.Contains(f, "auto-healing") {
		t.Errorf("while healing, faults[a1-node-1] = %q, want it to say auto-healing", f)
	}
	if len(cl.Status.Faults) != 0 {
		t.Errorf("faults after healing: %v", cl.Status.Faults)
	}
	hosts, _ := e.prov.ListHosts(e.ctx, ref)
	if len(hosts) != 3 || !hosts[2].Running {
		t.Errorf("hosts after healing: %+v", hosts)
	}
}

// watchFault returns the first fault recorded for a host while the
// cluster was UPDATE_IN_PROGRESS.
func watchFault(t *testing.T, e *testEnv, cluster, host string) func() string {
	w, err := e.wc.Clusters(ns).Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var fault string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			cl, ok := ev.Object.(*wharfv1.Cluster)
			mu.Lock()
			if ok && fault == "" && cl.Status.Status == wharfv1.StatusUpdateInProgress {
				fault = cl.Status.Faults[host]
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return fault
	}
}
