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
