package coe

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
)

// The service dies mid-create (its controller stops with workers being
// made); a new one finishes the create, and another adopts the cluster
// without making anything again.
func TestRestartMidCreate(t *testing.T) {
	e := newEnv(t, nil)
	gate := make(chan struct{})
	e.rt.setGate(gate)
	e.start()
	e.createCluster("k1", 2)
	e.waitFor("k1", "control plane ready", func(cl *wharfv1.Cluster) bool {
		return slices.ContainsFunc(cl.Status.Steps, func(s wharfv1.Step) bool { return s.Name == stepControlPlane })
	})
	e.stop()
	if cl := e.cluster("k1"); cl.Status.Status != wharfv1.StatusCreateInProgress {
		t.Fatalf("after the service stopped: %s (%s), want CREATE_IN_PROGRESS", cl.Status.Status, cl.Status.StatusReason)
	}
	close(gate)

	e.start()
	cl := e.waitStatus("k1", wharfv1.StatusCreateComplete)
	var steps []string
	for _, s := range cl.Status.Steps {
		steps = append(steps, s.Name)
	}
	if want := []string{stepCredentials, stepMasterHosts, stepControlPlane, stepWorkerHosts, stepNodesReady}; !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	ref := provider.ClusterRef{Namespace: ns, Name: "k1", UID: string(cl.UID)}
	hosts, err := e.prov.ListHosts(e.ctx, ref)
	if err != nil || len(hosts) != 3 {
		t.Fatalf("hosts %+v, want 3", hosts)
	}

	// A third controller adopts the cluster as it is.
	e.stop()
	creates := e.prov.Creates("k1-master-0") + e.prov.Creates("k1-node-0") + e.prov.Creates("k1-node-1")
	e.start()
	// A change of the cluster's spec makes the new controller reconcile it.
	cl = e.updateCluster("k1", func(cl *wharfv1.Cluster) { cl.Spec.Labels = map[string]string{"owner": "k"} })
	e.waitFor("k1", "reconciled", func(c *wharfv1.Cluster) bool {
		return c.Status.ObservedGeneration == cl.Generation && c.Status.HealthStatus == wharfv1.HealthHealthy &&
			c.Status.Status == wharfv1.StatusCreateComplete
	})
	e.stop()
	if now := e.prov.Creates("k1-master-0") + e.prov.Creates("k1-node-0") + e.prov.Creates("k1-node-1"); now != creates {
		t.Errorf("the adopting controller called CreateHost %d times", now-creates)
	}
}

// The service dies while a resize makes a host; the next one finishes it.
func TestRestartMidResize(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("k2", 1)
	e.waitStatus("k2", wharfv1.StatusCreateComplete)
	gate := make(chan struct{})
	e.rt.setGate(gate)
	e.updateCluster("k2", func(cl *wharfv1.Cluster) { cl.Spec.NodeCount = 2 })
	e.waitStatus("k2", wharfv1.StatusUpdateInProgress)
	e.stop()
	close(gate)

	e.start()
	cl := e.waitStatus("k2", wharfv1.StatusUpdateComplete)
	nodes, err := e.kube(cl).CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ready []string
	for _, n := range nodes.Items {
		if nodeReady(&n) {
			ready = append(ready, n.Name)
		}
	}
	if !slices.Equal(ready, []string{"k2-node-0", "k2-node-1"}) {
		t.Errorf("ready nodes %v, want k2-node-0 and k2-node-1", ready)
	}
	if g := e.group("k2-default-worker"); g.Status.Status != wharfv1.StatusUpdateComplete || len(g.Status.Nodes) != 2 {
		t.Errorf("worker group status %+v", g.Status)
	}
}
