package podgc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

func node(name string) *v1.Node { return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }

func pod(name, nodeName string, terminating bool) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name)},
		Spec:       v1.PodSpec{NodeName: nodeName},
	}
	if terminating {
		p.DeletionTimestamp = ptr.To(metav1.Now())
	}
	return p
}

// forceDeleted returns the pods deleted with grace period 0, sorted and
// without repeats (a later pass may retry a pod the cache still shows).
func forceDeleted(client *fake.Clientset) []string {
	var out []string
	for _, a := range client.Actions() {
		d, ok := a.(clienttesting.DeleteActionImpl)
		if !ok || d.Resource.Resource != "pods" {
			continue
		}
		if g := d.DeleteOptions.GracePeriodSeconds; g != nil && *g == 0 {
			out = append(out, d.Name)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestPodGC(t *testing.T) {
	const quarantine = 5 * time.Second
	tests := []struct {
		name    string
		objects []runtime.Object
		// liveNodes exist on the server but not (yet) in the cache.
		liveNodes        []string
		wantBeforeExpiry []string
		wantAfterExpiry  []string
	}{
		{
			name:    "pods on existing nodes stay",
			objects: []runtime.Object{node("n1"), pod("a", "n1", false), pod("b", "n1", true), pod("pending", "", false)},
		},
		{
			name:            "pods on a deleted node go after the quarantine, terminating or not",
			objects:         []runtime.Object{node("n1"), pod("a", "n1", false), pod("b", "gone", false), pod("c", "gone", true)},
			wantAfterExpiry: []string{"b", "c"},
		},
		{
			name:      "node missing from the cache but alive on the server: pods stay",
			objects:   []runtime.Object{pod("a", "new", false)},
			liveNodes: []string{"new"},
		},
		{
			name:             "unscheduled terminating pod goes at once",
			objects:          []runtime.Object{pod("a", "", true), pod("b", "", false)},
			wantBeforeExpiry: []string{"a"},
			wantAfterExpiry:  []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			for _, n := range tt.liveNodes {
				client.PrependReactor("get", "nodes", func(a clienttesting.Action) (bool, runtime.Object, error) {
					if a.(clienttesting.GetActionImpl).Name == n {
						return true, node(n), nil
					}
					return false, nil, nil
				})
			}
			clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			factory := informers.NewSharedInformerFactory(client, 0)
			logger := slog.New(slog.NewTextHandler(t.Output(), nil))
			c := New(logger, client, factory, WithClock(clk), WithQuarantine(quarantine))
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(func() { cancel(); factory.Shutdown() })
			factory.Start(ctx.Done())
			factory.WaitForCacheSync(ctx.Done())

			c.gc(ctx, 2)
			if diff := cmp.Diff(tt.wantBeforeExpiry, forceDeleted(client)); diff != "" {
				t.Errorf("force-deleted before the quarantine ended (-want +got):\n%s", diff)
			}
			clk.Step(quarantine)
			c.gc(ctx, 2)
			if diff := cmp.Diff(tt.wantAfterExpiry, forceDeleted(client)); diff != "" {
				t.Errorf("force-deleted after the quarantine (-want +got):\n%s", diff)
			}
		})
	}
}

// A node that reappears during the quarantine saves its pods.
func TestPodGCNodeReturns(t *testing.T) {
	client := fake.NewClientset(pod("a", "n1", false))
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), client, factory, WithClock(clk), WithQuarantine(5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	c.gc(ctx, 1) // n1 starts its quarantine
	if _, err := client.CoreV1().Nodes().Create(ctx, node("n1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the node in the cache", func() (bool, string) {
		_, err := c.nodes.Get("n1")
		return err == nil, fmt.Sprint(err)
	})
	clk.Step(time.Minute)
	c.gc(ctx, 1)
	if got := forceDeleted(client); len(got) != 0 {
		t.Errorf("force-deleted %v; want none", got)
	}
}

// Run wires the loop: an unscheduled terminating pod goes without a test
// driving passes.
func TestRun(t *testing.T) {
	client := fake.NewClientset(pod("a", "", true))
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), client, factory, WithClock(clk))
	ctx, cancel := context.WithCancel(context.Background())
	defer factory.Shutdown()
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, 1) }()
	testwait.For(t, "the pod force-deleted", func() (bool, string) { return len(forceDeleted(client)) > 0, "none yet" })
	cancel()
	<-done
}
