package coe

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

// BenchmarkCreate measures a cluster create, from the Cluster's creation
// to the watch event that says CREATE_COMPLETE (all nodes Ready), on the
// fake provider: in-process control planes and simulated agents, so the
// figure is the controller's own cost and the cluster API's, without
// containerd or network namespaces.
//
//	go test -run XXX -bench Create ./internal/coe/
func BenchmarkCreate(b *testing.B) {
	for _, nodes := range []int32{2, 10} {
		b.Run(fmt.Sprintf("1+%d", nodes), func(b *testing.B) {
			e := newEnv(b, nil)
			e.start()
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				name := fmt.Sprintf("bench%d", i)
				w, err := e.wc.Clusters(ns).Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				e.createCluster(name, nodes)
				for ev := range w.ResultChan() {
					cl, ok := ev.Object.(*wharfv1.Cluster)
					if ok && cl.Status.Status == wharfv1.StatusCreateComplete {
						break
					}
					if ok && cl.Status.Status == wharfv1.StatusCreateFailed {
						b.Fatalf("create failed: %s", cl.Status.StatusReason)
					}
				}
				total += time.Since(start)
				w.Stop()
				b.StopTimer()
				e.deleteCluster(name)
				testserver.WaitFor(b, "hosts gone", waitLong, func() (bool, error) { return len(e.prov.All()) == 0, nil })
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/create")
		})
	}
}

// BenchmarkAutoscaleUp measures host autoscaling on the fake provider:
// a 1+1 cluster whose one node is full gets 8 pods of 500m that fit no
// node; the figures are from the Deployment's creation to the new host's
// node Ready and to every pod Running, with the default scale-up delay
// (1s, the pods must stay unschedulable that long). Between rounds the
// load goes and the group returns to 1 node (not timed).
//
//	go test -run XXX -bench AutoscaleUp -benchtime 5x ./internal/coe/
func BenchmarkAutoscaleUp(b *testing.B) {
	e := newEnv(b, nil)
	e.start(func(cfg *Config) { cfg.Autoscale.ScaleDownUnneeded = time.Second })
	kube := autoscaledCluster(b, e, "bench", 4)
	deployRequesting(b, kube, "base", 8, "500m") // fills bench-node-0
	waitRunning(b, kube, "base", 8)
	var toReady, toRunning time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("load%d", i)
		start := time.Now()
		deployRequesting(b, kube, name, 8, "500m")
		ready := waitNewNode(b, kube, 2)
		toReady += ready.Sub(start)
		waitRunning(b, kube, name, 8)
		toRunning += time.Since(start)
		b.StopTimer()
		if err := kube.AppsV1().Deployments("default").Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		testserver.WaitFor(b, "back to 1 node", waitLong, func() (bool, error) {
			g := e.group("bench-default-worker")
			return g.Spec.NodeCount == 1 && g.Status.Status == wharfv1.StatusUpdateComplete && len(g.Status.Nodes) == 1, nil
		})
		b.StartTimer()
	}
	b.ReportMetric(float64(toReady.Milliseconds())/float64(b.N), "ms/node-ready")
	b.ReportMetric(float64(toRunning.Milliseconds())/float64(b.N), "ms/pods-running")
}
