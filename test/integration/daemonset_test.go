//go:build integration

package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

const daemonSetManifest = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      nodeSelector:
        type: simulated
      containers:
      - name: c
        image: registry.wharf.local/wharf/testapp:v1
`

// daemonPods returns, per node, the image of the live agent pods running
// there.
func daemonPods(ctx context.Context, c kubernetes.Interface) (map[string][]string, error) {
	l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Spec.Containers[0].Image)
		}
	}
	return out, nil
}

// onEveryNode waits until each of nodes runs exactly one agent pod of
// image, and no other node runs one.
func onEveryNode(t *testing.T, ctx context.Context, c kubernetes.Interface, image string, nodes ...string) {
	t.Helper()
	sort.Strings(nodes)
	testserver.WaitFor(t, fmt.Sprintf("one %s pod on each of %v", image, nodes), 60*time.Second, func() (bool, error) {
		pods, err := daemonPods(ctx, c)
		if err != nil {
			return false, err
		}
		var got []string
		for n, imgs := range pods {
			if len(imgs) != 1 || imgs[0] != image {
				return false, fmt.Errorf("node %s runs %v", n, imgs)
			}
			got = append(got, n)
		}
		sort.Strings(got)
		return strings.Join(got, ",") == strings.Join(nodes, ","), fmt.Errorf("pods on %v", got)
	})
}

// TestDaemonSet runs a DaemonSet on simulated nodes with the real
// kubectl: rollout status, an image update rolled node by node, history
// and undo, a new node getting its pod, a node labelled out losing it.
func TestDaemonSet(t *testing.T) {
	const minor = "33"
	testserver.Kubectl(t, minor)
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	k := testserver.NewKubectl(t, minor, srv.kubeconfig())
	c := srv.client()
	ctx := testContext(t, 4*time.Minute)
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 2, Prefix: "node"})
	testserver.WaitFor(t, "two nodes", 60*time.Second, func() (bool, error) {
		l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 2, err
	})

	testserver.Contains(t, k.RunIn(daemonSetManifest, "apply", "-f", "-"), "daemonset.apps/agent created")
	testserver.Contains(t, k.Run("rollout", "status", "ds/agent", "--timeout=60s"), `daemon set "agent" successfully rolled out`)
	onEveryNode(t, ctx, c, "registry.wharf.local/wharf/testapp:v1", "node-0", "node-1")
	out := k.Run("get", "ds", "agent")
	testserver.Contains(t, out, "NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "type=simulated")
	if f := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); len(f) < 6 || strings.Join(f[1:6], " ") != "2 2 2 2 2" {
		t.Errorf("kubectl get ds agent:\n%s\nwant 2 desired, current, ready, up-to-date, available", out)
	}
	testserver.Contains(t, k.Run("get", "all"), "daemonset.apps/agent")

	// The pods carry what upstream's controller puts on them.
	l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind != "DaemonSet" || p.Labels["controller-revision-hash"] == "" || p.Labels["pod-template-generation"] != "1" {
			t.Errorf("pod %s: controller %v labels %v", p.Name, ref, p.Labels)
		}
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != p.Spec.NodeName {
			t.Errorf("pod %s on %s: node affinity %+v", p.Name, p.Spec.NodeName, terms)
		}
	}

	// An image update rolls out; history and undo.
	testserver.Contains(t, k.Run("set", "image", "ds/agent", "c=registry.wharf.local/wharf/testapp:v2"), "daemonset.apps/agent image updated")
	testserver.Contains(t, k.Run("rollout", "status", "ds/agent", "--timeout=60s"), `daemon set "agent" successfully rolled out`)
	onEveryNode(t, ctx, c, "registry.wharf.local/wharf/testapp:v2", "node-0", "node-1")
	hist := k.Run("rollout", "history", "ds/agent")
	testserver.Contains(t, hist, "REVISION", "1 ", "2 ")
	testserver.Contains(t, k.Run("rollout", "history", "ds/agent", "--revision=1"), "testapp:v1")
	testserver.Contains(t, k.Run("get", "controllerrevisions"), "daemonset.apps/agent")
	testserver.Contains(t, k.Run("rollout", "undo", "ds/agent"), "daemonset.apps/agent rolled back")
	testserver.Contains(t, k.Run("rollout", "status", "ds/agent", "--timeout=60s"), `daemon set "agent" successfully rolled out`)
	onEveryNode(t, ctx, c, "registry.wharf.local/wharf/testapp:v1", "node-0", "node-1")
	testserver.Contains(t, k.Run("rollout", "history", "ds/agent"), "2 ", "3 ")

	// A new node gets its pod; a node labelled out loses it.
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "late"})
	onEveryNode(t, ctx, c, "registry.wharf.local/wharf/testapp:v1", "node-0", "node-1", "late-0")
	k.Run("label", "node", "node-1", "type=other", "--overwrite")
	onEveryNode(t, ctx, c, "registry.wharf.local/wharf/testapp:v1", "node-0", "late-0")
	testserver.Contains(t, k.Run("rollout", "status", "ds/agent", "--timeout=60s"), `daemon set "agent" successfully rolled out`)

	// Deleting the DaemonSet takes its pods and revisions with it.
	k.Run("delete", "ds", "agent")
	testserver.WaitFor(t, "pods and revisions gone", 60*time.Second, func() (bool, error) {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			return false, err
		}
		revs, err := c.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0 && len(revs.Items) == 0, fmt.Errorf("%d pods, %d revisions", len(pods.Items), len(revs.Items))
	})
}
