//go:build integration

package integration

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

const webBudget = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: web
`

// TestDisruptionBudgetBlocksDrain drains a simulated node running both
// pods of a Deployment with the real kubectl: a budget that needs both
// pods makes the eviction subresource answer 429 and kubectl drain retry
// until its timeout, as against Kubernetes; once the budget allows one
// disruption, the drain evicts the pods one at a time (the second when the
// first's replacement is Ready on the other node) and completes.
func TestDisruptionBudgetBlocksDrain(t *testing.T) {
	const minor = "33"
	testserver.Kubectl(t, minor)
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	k := testserver.NewKubectl(t, minor, srv.kubeconfig())
	c := srv.client()
	ctx := testContext(t, 4*time.Minute)
	nodes, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	go simnode.Run(nodes, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "a"})

	// Both pods on a-0: it is the only node when they are scheduled.
	testserver.WaitFor(t, "node a-0", 60*time.Second, func() (bool, error) {
		_, err := c.CoreV1().Nodes().Get(ctx, "a-0", metav1.GetOptions{})
		return err == nil, nil
	})
	if _, err := c.AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "2 web pods running on a-0", 60*time.Second, func() (bool, error) {
		pods, err := runningPods(ctx, c, "default", "web")
		return len(pods) == 2, err
	})
	go simnode.Run(nodes, testserver.Logger(t), c, simnode.Config{Count: 1, Prefix: "b"})

	testserver.Contains(t, k.RunIn(webBudget, "apply", "-f", "-"), "poddisruptionbudget.policy/web created")
	out := k.Eventually(`web\s+2\s+N/A\s+0\s+`, "get", "pdb")
	if !strings.HasPrefix(out, "NAME") || !regexp.MustCompile(`NAME\s+MIN AVAILABLE\s+MAX UNAVAILABLE\s+ALLOWED DISRUPTIONS\s+AGE`).MatchString(out) {
		t.Errorf("kubectl get pdb columns:\n%s", out)
	}
	pdb, err := c.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := pdb.Status; s.CurrentHealthy != 2 || s.DesiredHealthy != 2 || s.ExpectedPods != 2 || s.ObservedGeneration != pdb.Generation {
		t.Errorf("budget status %+v", s)
	}

	// The eviction subresource refuses, with Kubernetes' answer.
	pods, _ := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	victim := pods.Items[0].Name
	err = c.CoreV1().Pods("default").EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: victim, Namespace: "default"}})
	if !apierrors.IsTooManyRequests(err) || err.Error() != "Cannot evict pod as it would violate the pod's disruption budget." {
		t.Fatalf("eviction: %v, want 429", err)
	}
	if st := err.(apierrors.APIStatus).Status(); st.Details == nil || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Type != policyv1.DisruptionBudgetCause ||
		st.Details.Causes[0].Message != "The disruption budget web needs 2 healthy pods and has 2 currently" {
		t.Errorf("eviction refusal details: %+v", st.Details)
	}

	// kubectl drain retries until its timeout.
	cmd := k.Cmd("", "drain", "a-0", "--ignore-daemonsets", "--timeout=3s")
	blocked, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("drain with a budget allowing nothing succeeded:\n%s", blocked)
	}
	testserver.Contains(t, string(blocked), "node/a-0 cordoned",
		`error when evicting pods/"`+victim[:len("web-")],
		`-n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.`,
		"global timeout reached: 3s")
	if left, _ := runningPods(ctx, c, "default", "web"); len(left) != 2 {
		t.Errorf("pods running after the blocked drain: %v", left)
	}

	// One disruption allowed: the drain completes, a pod at a time.
	k.Run("patch", "pdb", "web", "--type=merge", "-p", `{"spec":{"minAvailable":1}}`)
	k.Eventually(`web\s+1\s+N/A\s+1\s+`, "get", "pdb")
	drained := k.Run("drain", "a-0", "--ignore-daemonsets", "--timeout=90s")
	testserver.Contains(t, drained, "evicted", "node/a-0 drained")
	testserver.WaitFor(t, "2 web pods running on b-0", 60*time.Second, func() (bool, error) {
		pods, err := runningPods(ctx, c, "default", "web")
		for _, n := range pods {
			if n != "b-0" {
				return false, err
			}
		}
		return len(pods) == 2, err
	})
	got, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got.Items {
		if p.Spec.NodeName == "a-0" && p.DeletionTimestamp == nil {
			t.Errorf("pod %s still on the drained node", p.Name)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.DisruptionTarget {
				t.Errorf("replacement pod %s has %+v", p.Name, cond)
			}
		}
	}
}
