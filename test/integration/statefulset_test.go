//go:build integration

package integration

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

const statefulSetManifest = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: c
        image: registry.wharf.local/wharf/testapp:v1
`

// stsImages returns each pod of the set with its image: web-0=…:v1 ….
func stsImages(ctx context.Context, c kubernetes.Interface) (string, error) {
	l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return "", err
	}
	var out []string
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		img := p.Spec.Containers[0].Image
		out = append(out, p.Name+"="+img[strings.LastIndex(img, ":")+1:])
	}
	slices.Sort(out)
	return strings.Join(out, " "), nil
}

// stsPodsAre is a WaitFor condition: the running pods and images are want.
func stsPodsAre(ctx context.Context, c kubernetes.Interface, want string) func() (bool, error) {
	return func() (bool, error) {
		got, err := stsImages(ctx, c)
		if err != nil {
			return false, err
		}
		return got == want, fmt.Errorf("pods %s", got)
	}
}

// TestStatefulSet drives a StatefulSet on simulated nodes with the real
// kubectl: creation in order with stable names and DNS identity, rollout
// status, kubectl get's columns, scale, a partitioned rolling update,
// history and undo, and the API's refusal of a changed serviceName.
func TestStatefulSet(t *testing.T) {
	const minor = "33"
	testserver.Kubectl(t, minor)
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	k := testserver.NewKubectl(t, minor, srv.kubeconfig())
	c := srv.client()
	ctx := testContext(t, 4*time.Minute)
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 2})
	testserver.WaitFor(t, "two nodes", 60*time.Second, func() (bool, error) {
		l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 2, err
	})

	testserver.Contains(t, k.RunIn(statefulSetManifest, "apply", "-f", "-"), "service/web created", "statefulset.apps/web created")
	testserver.Contains(t, k.Run("rollout", "status", "sts/web", "--timeout=90s"), "partitioned roll out complete: 3 new pods have been updated")
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.Hostname != name || p.Spec.Subdomain != "web" || p.Labels["statefulset.kubernetes.io/pod-name"] != name ||
			p.Labels["apps.kubernetes.io/pod-index"] != fmt.Sprint(i) || p.Labels["controller-revision-hash"] == "" {
			t.Errorf("pod %s: hostname %q subdomain %q labels %v", name, p.Spec.Hostname, p.Spec.Subdomain, p.Labels)
		}
	}
	// Created in order: each pod after the previous one was ready.
	events := k.Run("get", "events", "--field-selector", "involvedObject.kind=StatefulSet", "--sort-by=.metadata.creationTimestamp", "-o", "custom-columns=MSG:.message")
	if !regexp.MustCompile(`(?s)create Pod web-0 in StatefulSet web successful.*create Pod web-1 in StatefulSet web successful.*create Pod web-2 in StatefulSet web successful`).MatchString(events) {
		t.Errorf("events:\n%s", events)
	}

	out := k.Run("get", "sts")
	if !regexp.MustCompile(`(?m)^NAME\s+READY\s+AGE\s*$`).MatchString(out) || !regexp.MustCompile(`(?m)^web\s+3/3\s+\d+s\s*$`).MatchString(out) {
		t.Errorf("kubectl get sts:\n%s", out)
	}
	out = k.Run("get", "statefulset", "web", "-o", "wide")
	if !regexp.MustCompile(`(?m)^NAME\s+READY\s+AGE\s+CONTAINERS\s+IMAGES\s*$`).MatchString(out) || !strings.Contains(out, "registry.wharf.local/wharf/testapp:v1") {
		t.Errorf("kubectl get statefulset -o wide:\n%s", out)
	}
	testserver.Contains(t, k.Run("get", "all"), "statefulset.apps/web")
	testserver.Contains(t, k.Run("explain", "sts.spec.podManagementPolicy"), "OrderedReady")
	testserver.Contains(t, k.RunIn(statefulSetManifest, "apply", "-f", "-"), "statefulset.apps/web unchanged")

	testserver.Contains(t, k.Run("scale", "sts/web", "--replicas=5"), "statefulset.apps/web scaled")
	testserver.Contains(t, k.Run("rollout", "status", "sts/web", "--timeout=90s"), "5 new pods have been updated")

	// Only ordinals at or above the partition take the new template.
	k.Run("patch", "sts/web", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":3}}}}`)
	k.Run("set", "image", "sts/web", "c=registry.wharf.local/wharf/testapp:v2")
	testserver.Contains(t, k.Run("rollout", "status", "sts/web", "--timeout=90s"), "partitioned roll out complete: 2 new pods have been updated")
	testserver.WaitFor(t, "web-3 and web-4 at v2", 60*time.Second, stsPodsAre(ctx, c, "web-0=v1 web-1=v1 web-2=v1 web-3=v2 web-4=v2"))
	hist := k.Run("rollout", "history", "sts/web")
	if !regexp.MustCompile(`(?m)^1\s`).MatchString(hist) || !regexp.MustCompile(`(?m)^2\s`).MatchString(hist) {
		t.Errorf("rollout history:\n%s", hist)
	}
	testserver.Contains(t, k.Run("rollout", "history", "sts/web", "--revision=2"), "testapp:v2")
	testserver.Contains(t, k.Run("rollout", "undo", "sts/web"), "statefulset.apps/web rolled back")
	testserver.WaitFor(t, "all back at v1", 60*time.Second, stsPodsAre(ctx, c, "web-0=v1 web-1=v1 web-2=v1 web-3=v1 web-4=v1"))
	testserver.Contains(t, k.Run("rollout", "history", "sts/web"), "3 ")

	// Scale down: highest ordinals go.
	k.Run("scale", "sts/web", "--replicas=2")
	testserver.WaitFor(t, "web-0 and web-1 only", 60*time.Second, stsPodsAre(ctx, c, "web-0=v1 web-1=v1"))

	// A spec field other than the allowed ones: 422 with upstream's message.
	cmd := k.Cmd("", "patch", "sts/web", "-p", `{"spec":{"serviceName":"other"}}`)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden") {
		t.Errorf("changing serviceName: %v\n%s", err, msg)
	}
	cmd = k.Cmd(strings.Replace(statefulSetManifest[strings.Index(statefulSetManifest, "apiVersion: apps/v1"):], "name: web\nspec:", "name: bad\nspec:\n  podManagementPolicy: Random", 1), "create", "-f", "-")
	msg, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), `spec.podManagementPolicy: Invalid value: "Random": must be 'OrderedReady' or 'Parallel'`) {
		t.Errorf("a bad podManagementPolicy: %v\n%s", err, msg)
	}
}
