package replicaset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/testwait"
)

func TestController(t *testing.T) {
	var failCreates atomic.Bool
	failingCreates := func(cs *fake.Clientset) {
		cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failCreates.Load() {
				return true, nil, errors.New("exceeded quota")
			}
			return false, nil, nil
		})
	}
	tests := []struct {
		name  string
		opts  fakeapi.Options
		setup func(*fake.Clientset)
		run   func(t *testing.T, e *env)
	}{
		{name: "creates pods with owner and reports status", run: func(t *testing.T, e *env) {
			rs := e.createRS(newReplicaSet("web", 3, "web"))
			testwait.For(t, "3 pods and observed status", func() (bool, string) {
				got := e.getRS("web")
				return len(e.pods(appWeb)) == 3 && got.Status.Replicas == 3 && got.Status.ObservedGeneration == 1, statusString(got)
			})
			yes := true
			wantRef := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
			for _, p := range e.pods(appWeb) {
				if !strings.HasPrefix(p.Name, "web-") || p.GenerateName != "web-" {
					t.Errorf("pod %q: generateName %q, want web-", p.Name, p.GenerateName)
				}
				if diff := cmp.Diff(wantRef, p.OwnerReferences); diff != "" {
					t.Errorf("pod %q owner references (-want +got):\n%s", p.Name, diff)
				}
				if diff := cmp.Diff(rs.Spec.Template.Labels, p.Labels); diff != "" {
					t.Errorf("pod %q labels (-want +got):\n%s", p.Name, diff)
				}
				if p.Annotations["note"] != "x" || p.Spec.Containers[0].Image != "testapp:1" {
					t.Errorf("pod %q does not carry the template: %v %v", p.Name, p.Annotations, p.Spec.Containers)
				}
			}
			e.markReady(names(e.pods(appWeb))...)
			testwait.For(t, "all ready and available", func() (bool, string) {
				s := e.getRS("web").Status
				return s.ReadyReplicas == 3 && s.AvailableReplicas == 3 && s.FullyLabeledReplicas == 3, statusString(e.getRS("web"))
			})
			if n := e.countEvents(controllerutil.ReasonSuccessfulCreate); n != 3 {
				t.Errorf("%d SuccessfulCreate events, want 3", n)
			}
			creates := 0
			for _, a := range e.cs.Actions() {
				if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
					creates++
				}
			}
			if creates != 3 {
				t.Errorf("%d pod creations, want 3 (expectations must stop resyncs from creating again)", creates)
			}
		}},
		{name: "scale down deletes not-ready pods first", run: func(t *testing.T, e *env) {
			e.createRS(newReplicaSet("web", 4, "web"))
			testwait.For(t, "4 pods", func() (bool, string) { return len(e.pods(appWeb)) == 4, fmt.Sprint(names(e.pods(appWeb))) })
			all := names(e.pods(appWeb))
			keep := all[:2]
			e.markReady(keep...)
			testwait.For(t, "2 ready", func() (bool, string) {
				return e.getRS("web").Status.ReadyReplicas == 2, statusString(e.getRS("web"))
			})
			e.scaleRS("web", 2)
			testwait.For(t, "2 pods left", func() (bool, string) {
				got := e.getRS("web")
				return len(e.pods(appWeb)) == 2 && got.Status.Replicas == 2 && got.Status.ObservedGeneration == 2, statusString(got)
			})
			left := names(e.pods(appWeb))
			slices.Sort(left)
			slices.Sort(keep)
			if diff := cmp.Diff(keep, left); diff != "" {
				t.Errorf("surviving pods (-want +got):\n%s", diff)
			}
			if n := e.countEvents(controllerutil.ReasonSuccessfulDelete); n != 2 {
				t.Errorf("%d SuccessfulDelete events, want 2", n)
			}
		}},
		{name: "adopts matching orphans and releases pods that stop matching", setup: func(cs *fake.Clientset) {
			// Before the controller starts, so its first sync sees it.
			if _, err := cs.CoreV1().Pods(ns).Create(context.Background(), &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns, Labels: map[string]string{"app": "web"}},
			}, metav1.CreateOptions{}); err != nil {
				panic(err)
			}
		}, run: func(t *testing.T, e *env) {
			rs := e.createRS(newReplicaSet("web", 2, "web"))
			testwait.For(t, "orphan adopted and one pod created", func() (bool, string) {
				p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, "orphan", metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				ref := metav1.GetControllerOf(p)
				return ref != nil && ref.UID == rs.UID && len(e.pods(appWeb)) == 2, fmt.Sprint(p.OwnerReferences, names(e.pods(appWeb)))
			})
			p, _ := e.cs.CoreV1().Pods(ns).Get(e.ctx, "orphan", metav1.GetOptions{})
			p.Labels = map[string]string{"app": "debug"}
			if _, err := e.cs.CoreV1().Pods(ns).Update(e.ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "pod released and replaced", func() (bool, string) {
				p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, "orphan", metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				return len(p.OwnerReferences) == 0 && len(e.pods(appWeb)) == 2, fmt.Sprint(p.OwnerReferences, names(e.pods(appWeb)))
			})
		}},
		{name: "failed creations report ReplicaFailure until they succeed", setup: failingCreates, run: func(t *testing.T, e *env) {
			failCreates.Store(true)
			e.createRS(newReplicaSet("web", 5, "web"))
			testwait.For(t, "ReplicaFailure condition", func() (bool, string) {
				c := replicaFailure(e.getRS("web").Status)
				return c != nil && c.Reason == "FailedCreate" && strings.Contains(c.Message, "exceeded quota"), statusString(e.getRS("web"))
			})
			if e.countEvents(controllerutil.ReasonFailedCreate) == 0 {
				t.Errorf("no FailedCreate event")
			}
			failCreates.Store(false)
			testwait.For(t, "5 pods and the condition gone", func() (bool, string) {
				got := e.getRS("web")
				return len(e.pods(appWeb)) == 5 && replicaFailure(got.Status) == nil, statusString(got)
			})
		}},
		{name: "minReadySeconds delays availability", run: func(t *testing.T, e *env) {
			rs := newReplicaSet("web", 1, "web")
			rs.Spec.MinReadySeconds = 1
			e.createRS(rs)
			testwait.For(t, "a pod", func() (bool, string) { return len(e.pods(appWeb)) == 1, "" })
			e.markReady(names(e.pods(appWeb))...)
			testwait.For(t, "ready", func() (bool, string) {
				return e.getRS("web").Status.ReadyReplicas == 1, statusString(e.getRS("web"))
			})
			// Nothing but the controller's own requeue changes it now.
			testwait.For(t, "available after minReadySeconds", func() (bool, string) {
				return e.getRS("web").Status.AvailableReplicas == 1, statusString(e.getRS("web"))
			})
		}},
		{name: "terminating pods are replaced and counted apart", opts: fakeapi.Options{GracefulPodDeletion: true}, run: func(t *testing.T, e *env) {
			e.createRS(newReplicaSet("web", 2, "web"))
			testwait.For(t, "2 pods", func() (bool, string) { return len(e.pods(appWeb)) == 2, "" })
			victim := e.pods(appWeb)[0].Name
			if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, victim, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "a replacement while the old pod terminates", func() (bool, string) {
				got := e.getRS("web")
				t := got.Status.TerminatingReplicas
				return len(e.pods(appWeb)) == 3 && got.Status.Replicas == 2 && t != nil && *t == 1, statusString(got)
			})
			if err := fakeapi.Finalize(e.cs, ns, victim); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "no terminating pod", func() (bool, string) {
				got := e.getRS("web")
				t := got.Status.TerminatingReplicas
				return len(e.pods(appWeb)) == 2 && t != nil && *t == 0, statusString(got)
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var setup []func(*fake.Clientset)
			if tt.setup != nil {
				setup = append(setup, tt.setup)
			}
			tt.run(t, start(t, tt.opts, setup...))
		})
	}
}
