package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// BenchmarkSchedule measures the core algorithm alone, without the API: the
// pods/s it reports bounds what the whole scheduler can reach.
//
//	go test -run '^$' -bench BenchmarkSchedule -benchmem ./internal/scheduler/
func BenchmarkSchedule(b *testing.B) {
	const nodes, pods = 1000, 10_000
	workloads := []struct {
		name string
		node func(i int) *corev1.Node
		pod  func(i int) *corev1.Pod
	}{
		{
			// Ten deployments of 1,000 replicas on identical nodes.
			name: "uniform",
			node: func(i int) *corev1.Node {
				return makeNode(fmt.Sprintf("node-%04d", i), "8", "32Gi", 110, withLabel("zone", fmt.Sprint("z", i%3)))
			},
			pod: func(i int) *corev1.Pod {
				return makePod(fmt.Sprintf("pod-%05d", i), withContainer("cpu", "100m", "memory", "128Mi"),
					withOwner(fmt.Sprint("rs-", i%10)))
			},
		},
		{
			// A tenth of the nodes tainted, not ready or cordoned; pods with
			// tolerations, node selectors, preferred affinity and host ports.
			name: "mixed",
			node: func(i int) *corev1.Node {
				var opts []nodeOpt
				switch i % 10 {
				case 1:
					opts = append(opts, withTaint("dedicated", "db", corev1.TaintEffectNoSchedule))
				case 2:
					opts = append(opts, withTaint("spot", "", corev1.TaintEffectPreferNoSchedule))
				case 3:
					opts = append(opts, withReady(corev1.ConditionFalse))
				case 4:
					opts = append(opts, cordoned())
				}
				opts = append(opts, withLabel("zone", fmt.Sprint("z", i%3)), withLabel("disk", []string{"ssd", "hdd"}[i%2]))
				return makeNode(fmt.Sprintf("node-%04d", i), "8", "32Gi", 110, opts...)
			},
			pod: func(i int) *corev1.Pod {
				opts := []podOpt{withContainer("cpu", "100m", "memory", "128Mi"), withOwner(fmt.Sprint("rs-", i%10))}
				switch i % 5 {
				case 0:
					opts = append(opts, withToleration("dedicated", corev1.TolerationOpEqual, "db", corev1.TaintEffectNoSchedule))
				case 1:
					opts = append(opts, withNodeSelector("disk", "ssd"))
				case 2:
					opts = append(opts, withPreferred(10, term(expr("zone", corev1.NodeSelectorOpIn, "z1"))))
				case 3:
					opts = append(opts, withRequired(term(expr("zone", corev1.NodeSelectorOpNotIn, "z2"))))
				}
				if i%100 == 0 {
					opts = append(opts, withHostPort("", corev1.ProtocolTCP, 8080))
				}
				return makePod(fmt.Sprintf("pod-%05d", i), opts...)
			},
		},
	}
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			nodeObjs := make([]*corev1.Node, nodes)
			for i := range nodeObjs {
				nodeObjs[i] = w.node(i)
			}
			podObjs := make([]*corev1.Pod, pods)
			for i := range podObjs {
				podObjs[i] = w.pod(i)
			}
			b.ReportAllocs()
			scheduled := 0
			for b.Loop() {
				b.StopTimer()
				c := newCache()
				for _, n := range nodeObjs {
					c.setNode(n)
				}
				a := newCore(c, 0, testRand(1))
				b.StartTimer()
				for _, p := range podObjs {
					if _, err := a.schedule(newPodInfo(p)); err != nil {
						b.Fatalf("pod %s: %v", p.Name, err)
					}
					scheduled++
				}
			}
			b.ReportMetric(float64(scheduled)/b.Elapsed().Seconds(), "pods/s")
		})
	}
}

// BenchmarkSchedulerPlumbing runs the whole Scheduler (informers, queue,
// cycle, async binds) against the fake clientset, whose Bind returns at once
// and changes nothing: it measures everything but the API server.
//
//	go test -run '^$' -bench BenchmarkSchedulerPlumbing ./internal/scheduler/
func BenchmarkSchedulerPlumbing(b *testing.B) {
	const nodes, pods = 1000, 10_000
	objs := make([]runtime.Object, 0, nodes+pods)
	for i := range nodes {
		objs = append(objs, makeNode(fmt.Sprintf("node-%04d", i), "8", "32Gi", 110))
	}
	for i := range pods {
		objs = append(objs, makePod(fmt.Sprintf("pod-%05d", i),
			withContainer("cpu", "100m", "memory", "128Mi"), withOwner(fmt.Sprint("rs-", i%10))))
	}
	logger := slog.New(slog.DiscardHandler)
	bound := 0
	for b.Loop() {
		b.StopTimer()
		client := fake.NewClientset(objs...)
		var binds atomic.Int64
		allBound := make(chan struct{})
		client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() != "binding" {
				return false, nil, nil
			}
			if binds.Add(1) == pods {
				close(allBound)
			}
			return true, nil, nil
		})
		factory := informers.NewSharedInformerFactory(client, 0)
		s := New(logger, client, factory, record.NewFakeRecorder(pods))
		ctx, cancel := context.WithCancel(b.Context())
		factory.Start(ctx.Done())
		factory.WaitForCacheSync(ctx.Done())
		done := make(chan struct{})
		b.StartTimer()
		go func() {
			defer close(done)
			s.Run(ctx)
		}()
		<-allBound
		b.StopTimer()
		bound += pods
		cancel()
		<-done
		factory.Shutdown()
		b.StartTimer()
	}
	b.ReportMetric(float64(bound)/b.Elapsed().Seconds(), "pods/s")
}
