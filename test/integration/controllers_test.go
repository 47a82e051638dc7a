//go:build integration

package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.wharf.local/wharf/testapp:v1"}}},
			},
		},
	}
}

func runningPods(ctx context.Context, c kubernetes.Interface, ns, app string) (map[string]string, error) {
	l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out[p.Name] = p.Spec.NodeName
		}
	}
	return out, nil
}

// TestDeadNodeIsMarkedAndItsPodsMove stops one simulated node's lease:
// the node becomes Unknown with the unreachable taints and its pods are
// replaced on the live node.
func TestDeadNodeIsMarkedAndItsPodsMove(t *testing.T) {
	s := testserver.Start(t)
	ctx := testContext(t, 3*time.Minute)
	c := s.Client
	live, cancelLive := context.WithCancel(ctx)
	defer cancelLive()
	doomed, kill := context.WithCancel(ctx)
	defer kill()
	go simnode.Run(live, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "live"})
	go simnode.Run(doomed, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "doomed"})
	testserver.WaitFor(t, "two ready nodes", 60*time.Second, func() (bool, error) {
		l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 2, err
	})
	if _, err := c.AppsV1().Deployments("default").Create(ctx, deployment("spread", 4), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "4 pods running on both nodes", 60*time.Second, func() (bool, error) {
		pods, err := runningPods(ctx, c, "default", "spread")
		nodes := map[string]bool{}
		for _, n := range pods {
			nodes[n] = true
		}
		return len(pods) == 4 && len(nodes) == 2, err
	})

	kill() // the doomed node stops renewing its lease, as a dead host would
	testserver.WaitFor(t, "the dead node is Unknown and tainted unreachable", 60*time.Second, func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "doomed-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionUnknown)
		}
		tainted := false
		for _, taint := range n.Spec.Taints {
			tainted = tainted || (taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute)
		}
		return ready && tainted, nil
	})
	testserver.WaitFor(t, "4 pods running, all on the live node", 60*time.Second, func() (bool, error) {
		pods, err := runningPods(ctx, c, "default", "spread")
		for _, n := range pods {
			if n != "live-0" {
				return false, err
			}
		}
		return len(pods) == 4, err
	})
}

// TestGarbageCollectionPolicies deletes deployments with each propagation policy.
func TestGarbageCollectionPolicies(t *testing.T) {
	s := testserver.Start(t)
	ctx := testContext(t, 3*time.Minute)
	c := s.Client
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 1})
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan} {
		t.Run(string(policy), func(t *testing.T) {
			name := map[metav1.DeletionPropagation]string{"Background": "bg", "Foreground": "fg", "Orphan": "orphan"}[policy]
			if _, err := c.AppsV1().Deployments("default").Create(ctx, deployment(name, 2), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			testserver.WaitFor(t, "2 pods running", 60*time.Second, func() (bool, error) {
				pods, err := runningPods(ctx, c, "default", name)
				return len(pods) == 2, err
			})
			if err := c.AppsV1().Deployments("default").Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
				t.Fatal(err)
			}
			testserver.WaitFor(t, "the deployment is gone", 60*time.Second, func() (bool, error) {
				_, err := c.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			rsList := func() int {
				l, _ := c.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
				return len(l.Items)
			}
			if policy == metav1.DeletePropagationOrphan {
				// The replica set stays, without an owner, and keeps its pods.
				// The orphan finalizer cleared the owner references before
				// the deployment went; what is left to check is that nothing
				// deletes them, so give a wrong cascade a bounded window to
				// show (the server runs on real time: no clock to step).
				time.Sleep(time.Second)
				l, err := c.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
				if err != nil || len(l.Items) != 1 || len(l.Items[0].OwnerReferences) != 0 {
					t.Fatalf("orphaned replica sets: %v %+v", err, l)
				}
				pods, _ := runningPods(ctx, c, "default", name)
				if len(pods) != 2 {
					t.Fatalf("%d pods left after orphaning, want 2", len(pods))
				}
				return
			}
			if policy == metav1.DeletePropagationForeground && rsList() != 0 {
				t.Fatal("foreground deletion finished before the replica set was gone")
			}
			testserver.WaitFor(t, "replica sets and pods gone", 60*time.Second, func() (bool, error) {
				l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
				return err == nil && len(l.Items) == 0 && rsList() == 0, err
			})
		})
	}
}

// TestNamespaceDeletionRemovesContent deletes a namespace holding a
// deployment, a service and a config map.
func TestNamespaceDeletionRemovesContent(t *testing.T) {
	s := testserver.Start(t)
	ctx := testContext(t, 3*time.Minute)
	c := s.Client
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 1})
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "the default service account", 60*time.Second, func() (bool, error) {
		_, err := c.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	c.AppsV1().Deployments("team").Create(ctx, deployment("app", 2), metav1.CreateOptions{})
	c.CoreV1().ConfigMaps("team").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, metav1.CreateOptions{})
	c.CoreV1().Services("team").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	testserver.WaitFor(t, "2 pods running", 60*time.Second, func() (bool, error) {
		pods, err := runningPods(ctx, c, "team", "app")
		return len(pods) == 2, err
	})
	if err := c.CoreV1().Namespaces().Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "the namespace and everything in it gone", 60*time.Second, func() (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	for _, list := range []func() (int, error){
		func() (int, error) {
			l, err := c.CoreV1().Pods("team").List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := c.AppsV1().ReplicaSets("team").List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := c.CoreV1().ConfigMaps("team").List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := c.CoreV1().Services("team").List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("left in the deleted namespace: %d objects (%v)", n, err)
		}
	}
}

// TestUnschedulablePodWaitsForRoom: a pod that fits nowhere says why, then
// runs once a node with room appears.
func TestUnschedulablePodWaitsForRoom(t *testing.T) {
	s := testserver.Start(t)
	ctx := testContext(t, 3*time.Minute)
	c := s.Client
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "small", CPU: "1"})
	testserver.WaitFor(t, "the small node", 60*time.Second, func() (bool, error) {
		_, err := c.CoreV1().Nodes().Get(ctx, "small-0", metav1.GetOptions{})
		return err == nil, err
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "big"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.wharf.local/wharf/testapp:v1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resourceMust("3")}}}}},
	}
	if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "PodScheduled=False with the reason", 60*time.Second, func() (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == "Unschedulable" {
				return true, nil
			}
		}
		return false, fmt.Errorf("conditions %+v", p.Status.Conditions)
	})
	testserver.WaitFor(t, "a FailedScheduling event naming the shortage", 60*time.Second, func() (bool, error) {
		l, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=big,reason=FailedScheduling"})
		if err != nil {
			return false, err
		}
		for _, e := range l.Items {
			if contains1(e.Message, "Insufficient cpu") {
				return true, nil
			}
		}
		return false, fmt.Errorf("events %+v", l.Items)
	})
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "large", CPU: "8"})
	testserver.WaitFor(t, "the pod runs on the large node", 60*time.Second, func() (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "big", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == "large-0" && p.Status.Phase == corev1.PodRunning, err
	})
}

// TestServiceEndpointsFollowPods: a service's Endpoints and EndpointSlice
// list its pods' IPs and go with it.
func TestServiceEndpointsFollowPods(t *testing.T) {
	s := testserver.Start(t)
	ctx := testContext(t, 2*time.Minute)
	c := s.Client
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 1})
	if _, err := c.AppsV1().Deployments("default").Create(ctx, deployment("web", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "3 ready addresses on port 8080", 60*time.Second, func() (bool, error) {
		ep, err := c.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 3 && ep.Subsets[0].Ports[0].Port == 8080, fmt.Errorf("%+v", ep.Subsets)
	})
	testserver.WaitFor(t, "an EndpointSlice with 3 endpoints", 60*time.Second, func() (bool, error) {
		l, err := c.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
		return err == nil && len(l.Items) == 1 && len(l.Items[0].Endpoints) == 3, err
	})
	c.AppsV1().Deployments("default").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{})
	testserver.WaitFor(t, "1 address after scaling down", 60*time.Second, func() (bool, error) {
		ep, err := c.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1, err
	})
	if err := c.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "endpoints and slice gone with the service", 60*time.Second, func() (bool, error) {
		_, err := c.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		l, lerr := c.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{})
		return apierrors.IsNotFound(err) && lerr == nil && len(l.Items) == 0, lerr
	})
}
