//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

// helmBin is where hack/install-deps.sh builds Helm 4.
const helmBin = "/usr/local/lib/wharf-tools/helm"

// helmRunner runs Helm against one cluster with its own HOME and XDG
// directories, so that nothing of the machine's user (repositories,
// plugins, HELM_* variables) leaks in.
type helmRunner struct {
	t          *testing.T
	kubeconfig string
	env        []string
	// Dir is the working directory (relative chart paths).
	Dir string
}

func newHelm(t *testing.T, kubeconfig string) *helmRunner {
	t.Helper()
	if _, err := os.Stat(helmBin); err != nil {
		t.Skipf("helm 4 not installed at %s (hack/install-deps.sh builds it): %v", helmBin, err)
	}
	home := t.TempDir()
	return &helmRunner{t: t, kubeconfig: kubeconfig, Dir: t.TempDir(), env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
	}}
}

// exec runs helm with --debug and the cluster's kubeconfig; stdout is what
// tests look at, stderr (the debug log) is shown when something fails.
func (h *helmRunner) exec(args ...string) (stdout, stderr string, err error) {
	all := append([]string{"--kubeconfig", h.kubeconfig, "--debug"}, args...)
	cmd := exec.Command(helmBin, all...)
	cmd.Dir, cmd.Env = h.Dir, h.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// run runs helm and fails the test unless it succeeds.
func (h *helmRunner) run(t *testing.T, args ...string) string {
	t.Helper()
	out, debug, err := h.exec(args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s\n%s", strings.Join(args, " "), err, out, debug)
	}
	return out
}

// fail runs helm and fails the test unless it fails; it returns stderr.
func (h *helmRunner) fail(t *testing.T, args ...string) string {
	t.Helper()
	out, debug, err := h.exec(args...)
	if err == nil {
		t.Fatalf("helm %s succeeded, want an error:\n%s\n%s", strings.Join(args, " "), out, debug)
	}
	return debug
}

// demoValues turn on the optional parts of the `helm create` chart.
var demoValues = []string{"--set", "autoscaling.enabled=true", "--set", "ingress.enabled=true"}

// TestHelm runs Helm 4 with its defaults (server-side apply, the kstatus
// watcher for --wait) against a server with two simulated nodes: the
// `helm create` chart with HPA and Ingress through install, upgrade,
// rollback, test and uninstall; a chart shipping a CRD and an instance of
// it; the client-side apply path; an apply conflict.
func TestHelm(t *testing.T) {
	dataDir := t.TempDir() + "/server"
	h := newHelm(t, filepath.Join(dataDir, "admin.kubeconfig"))
	srv := startServer(t, dataDir, "127.0.0.1:0")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(srv.dataDir + ".log")
			t.Logf("server log (%s):\n%s", srv.dataDir+".log", out)
		}
	})
	c := srv.client()
	rc, err := srv.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(rc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 2, Prefix: "node"})
	testserver.WaitFor(t, "two nodes to register", 30*time.Second, func() (bool, error) {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(nodes.Items) == 2, err
	})

	if !t.Run("create", func(t *testing.T) { helmCreate(t, h) }) {
		return
	}
	if !t.Run("install", func(t *testing.T) { helmInstall(t, h, c) }) {
		return
	}
	if !t.Run("upgrade", func(t *testing.T) { helmUpgrade(t, h, c) }) {
		return
	}
	t.Run("hpa-enforces-min-replicas", func(t *testing.T) { helmHPAMinReplicas(t, c) })
	if !t.Run("rollback", func(t *testing.T) { helmRollback(t, h, c) }) {
		return
	}
	t.Run("test", func(t *testing.T) {
		out := h.run(t, "test", "demo", "--timeout", "60s")
		testserver.Contains(t, out, "TEST SUITE:     demo-test-connection", "Phase:          Succeeded")
	})
	t.Run("crd-chart", func(t *testing.T) { helmCRDChart(t, h, dyn) })
	t.Run("client-side-apply", func(t *testing.T) { helmClientSideApply(t, h, c, dyn) })
	t.Run("apply-conflict", func(t *testing.T) { helmConflict(t, h, c, dyn) })
	t.Run("hook-job", func(t *testing.T) { helmHookJob(t, h, c) })
	t.Run("uninstall", func(t *testing.T) { helmUninstall(t, h, c, dyn) })
}

// helmCreate makes the `helm create` chart. Its test pod runs wget against
// the service; simulated nodes run nothing, so the pod is annotated to
// "exit 0" there (a real node ignores the annotation).
func helmCreate(t *testing.T, h *helmRunner) {
	testserver.Contains(t, h.run(t, "create", "demo"), "Creating demo")
	test := filepath.Join(h.Dir, "demo", "templates", "tests", "test-connection.yaml")
	data, err := os.ReadFile(test)
	if err != nil {
		t.Fatal(err)
	}
	const hook = `"helm.sh/hook": test` + "\n"
	if !bytes.Contains(data, []byte(hook)) {
		t.Fatalf("%s has no test hook annotation:\n%s", test, data)
	}
	data = bytes.Replace(data, []byte(hook), []byte(hook+"    "+simnode.ExitCodeAnnotation+`: "0"`+"\n"), 1)
	if err := os.WriteFile(test, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func helmInstall(t *testing.T, h *helmRunner, c kubernetes.Interface) {
	// --wait waits (kstatus) until the Deployment is available, which
	// the simulated nodes make it.
	out := h.run(t, append([]string{"install", "demo", "./demo", "--wait", "--timeout", "90s"}, demoValues...)...)
	testserver.Contains(t, out, "STATUS: deployed", "REVISION: 1")
	testserver.Contains(t, h.run(t, "list"), "demo", "deployed", "demo-0.1.0")
	testserver.Contains(t, h.run(t, "status", "demo"), "STATUS: deployed",
		"==> v1/Deployment", "==> v2/HorizontalPodAutoscaler", "==> v1/Ingress", "chart-example.local")
	manifest := h.run(t, "get", "manifest", "demo")
	for _, kind := range []string{"ServiceAccount", "Service", "Deployment", "HorizontalPodAutoscaler", "Ingress"} {
		testserver.Contains(t, manifest, "\nkind: "+kind+"\n")
	}
	checkDemo(t, c, "default", "demo", demoRevision{image: "nginx:1.16.0", min: 1, max: 100})

	d, err := c.AppsV1().Deployments("default").Get(context.Background(), "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.AvailableReplicas != 1 {
		t.Errorf("deployment has %d available replicas after --wait, want 1", d.Status.AvailableReplicas)
	}
	if !slices.ContainsFunc(d.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == "helm" && m.Operation == metav1.ManagedFieldsOperationApply
	}) {
		t.Errorf("deployment not applied server-side by helm: managed fields %+v", d.ManagedFields)
	}
	ing, err := c.NetworkingV1().Ingresses("default").Get(context.Background(), "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "chart-example.local" {
		t.Errorf("ingress rules %+v, want one for chart-example.local", ing.Spec.Rules)
	}
}

// helmUpgrade changes the image and the HPA's bounds. With autoscaling on
// the chart leaves the Deployment's replicas to the HPA, so replicaCount
// changes nothing.
func helmUpgrade(t *testing.T, h *helmRunner, c kubernetes.Interface) {
	out := h.run(t, append([]string{"upgrade", "demo", "./demo", "--wait", "--timeout", "90s",
		"--set", "replicaCount=2", "--set", "autoscaling.minReplicas=2", "--set", "autoscaling.maxReplicas=5", "--set", "image.tag=1.17.0"},
		demoValues...)...)
	testserver.Contains(t, out, `Release "demo" has been upgraded`, "REVISION: 2")
	checkDemo(t, c, "default", "demo", demoRevision{image: "nginx:1.17.0", min: 2, max: 5})
	hist := h.run(t, "history", "demo")
	testserver.Contains(t, hist, "superseded", "Install complete", "deployed", "Upgrade complete")
	if n := len(strings.Split(strings.TrimSpace(hist), "\n")); n != 3 {
		t.Errorf("history has %d lines, want a header and 2 revisions:\n%s", n, hist)
	}
}

// helmHPAMinReplicas: Kubernetes' HPA controller brings a target below
// minReplicas up to it even without metrics (before it reads any).
func helmHPAMinReplicas(t *testing.T, c kubernetes.Interface) {
	testserver.WaitFor(t, "the HPA to scale demo to minReplicas", 60*time.Second, func() (bool, error) {
		s, err := c.AppsV1().Deployments("default").GetScale(context.Background(), "demo", metav1.GetOptions{})
		return err == nil && s.Spec.Replicas == 2, err
	})
}

func helmRollback(t *testing.T, h *helmRunner, c kubernetes.Interface) {
	testserver.Contains(t, h.run(t, "rollback", "demo", "1", "--wait", "--timeout", "90s"), "Rollback was a success")
	checkDemo(t, c, "default", "demo", demoRevision{image: "nginx:1.16.0", min: 1, max: 100})
	testserver.Contains(t, h.run(t, "history", "demo"), "Rollback to 1")
	testserver.Contains(t, h.run(t, "status", "demo"), "REVISION: 3", "STATUS: deployed")
}

// demoRevision is what a revision of the demo chart sets.
type demoRevision struct {
	image    string
	min, max int32
	// annotations of the pod template, if any
	annotations map[string]string
}

// checkDemo checks that release's objects are as rev renders them: the
// Deployment's image (rolled out) and pod annotations, the HPA's bounds.
func checkDemo(t *testing.T, c kubernetes.Interface, ns, name string, rev demoRevision) {
	t.Helper()
	ctx := context.Background()
	d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != rev.image {
		t.Errorf("deployment %s/%s image %q, want %q", ns, name, got, rev.image)
	}
	if got := d.Spec.Template.Annotations; !mapsEqual(got, rev.annotations) {
		t.Errorf("deployment %s/%s pod annotations %v, want %v", ns, name, got, rev.annotations)
	}
	if !rolledOut(d) {
		t.Errorf("deployment %s/%s not rolled out after --wait: generation %d, status %+v", ns, name, d.Generation, d.Status)
	}
	if rev.max == 0 {
		return
	}
	hpa, err := c.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != rev.min || hpa.Spec.MaxReplicas != rev.max {
		t.Errorf("hpa %s/%s min %v max %d, want %d and %d", ns, name, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, rev.min, rev.max)
	}
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != name {
		t.Errorf("hpa %s/%s targets %+v", ns, name, hpa.Spec.ScaleTargetRef)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}

var (
	widgetGVR = schema.GroupVersionResource{Group: "helmtest.wharf.dev", Version: "v1", Resource: "widgets"}
	crdGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// helmCRDChart installs testdata/helm/crdchart: Helm creates the CRD from
// crds/ first, then the Widget. The server defaults and validates it by
// the CRD's schema; uninstall removes the Widget and, as Helm does, keeps
// the CRD.
func helmCRDChart(t *testing.T, h *helmRunner, dyn dynamic.Interface) {
	ctx := context.Background()
	chart, err := filepath.Abs("testdata/helm/crdchart")
	if err != nil {
		t.Fatal(err)
	}
	testserver.Contains(t, h.run(t, "install", "widgets", chart, "--wait", "--timeout", "60s"), "STATUS: deployed")
	crd, err := dyn.Resource(crdGVR).Get(ctx, "widgets.helmtest.wharf.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !conditionTrue(crd, "Established") {
		t.Errorf("CRD not established: %v", crd.Object["status"])
	}
	widget := func() map[string]any {
		t.Helper()
		w, err := dyn.Resource(widgetGVR).Namespace("default").Get(ctx, "widgets-widget", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" || w.GetAnnotations()["meta.helm.sh/release-name"] != "widgets" {
			t.Errorf("widget lacks Helm's ownership metadata: labels %v annotations %v", w.GetLabels(), w.GetAnnotations())
		}
		spec, _, _ := unstructured.NestedMap(w.Object, "spec")
		return spec
	}
	if got := widget(); got["size"] != int64(3) || got["color"] != "blue" {
		t.Errorf("widget spec %v, want size 3 and color blue", got)
	}

	// Without a color the schema's default applies; an invalid size is refused.
	h.run(t, "upgrade", "widgets", chart, "--set", "size=5", "--set", "color=null")
	if got := widget(); got["size"] != int64(5) || got["color"] != "red" {
		t.Errorf("widget spec %v after the upgrade, want size 5 and the default color red", got)
	}
	testserver.Contains(t, h.fail(t, "upgrade", "widgets", chart, "--set", "size=0"),
		"spec.size in body should be greater than or equal to 1")

	// The chart's test pod "exits" with testExitCode on simulated nodes.
	testserver.Contains(t, h.run(t, "test", "widgets", "--timeout", "60s"), "widgets-test-widget", "Phase:          Succeeded")
	h.run(t, "upgrade", "widgets", chart, "--set", "testExitCode=1")
	testserver.Contains(t, h.fail(t, "test", "widgets", "--timeout", "60s"), "pod widgets-test-widget failed")

	testserver.Contains(t, h.run(t, "uninstall", "widgets", "--wait", "--timeout", "60s"), `release "widgets" uninstalled`)
	if _, err := dyn.Resource(widgetGVR).Namespace("default").Get(ctx, "widgets-widget", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("widget after uninstall: %v, want NotFound", err)
	}
	if _, err := dyn.Resource(crdGVR).Get(ctx, "widgets.helmtest.wharf.dev", metav1.GetOptions{}); err != nil {
		t.Errorf("CRD after uninstall: %v, want it kept", err)
	}
	checkNoRelease(t, dyn, "default", "widgets")
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// helmClientSideApply installs and upgrades with --server-side=false (a
// three-way strategic merge patch), then moves the release to
// server-side apply: Helm rewrites the client-side field managers so that
// fields the chart no longer sets (a pod annotation, the Ingress) go.
func helmClientSideApply(t *testing.T, h *helmRunner, c kubernetes.Interface, dyn dynamic.Interface) {
	ns := []string{"--namespace", "csa"}
	install := append([]string{"install", "csa", "./demo", "--create-namespace", "--server-side=false", "--wait", "--timeout", "90s",
		"--set", "podAnnotations.team=blue"}, demoValues...)
	testserver.Contains(t, h.run(t, append(install, ns...)...), "STATUS: deployed")
	checkDemo(t, c, "csa", "csa-demo", demoRevision{image: "nginx:1.16.0", min: 1, max: 100, annotations: map[string]string{"team": "blue"}})
	d, err := c.AppsV1().Deployments("csa").Get(context.Background(), "csa-demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == "helm" && m.Operation == metav1.ManagedFieldsOperationUpdate
	}) {
		t.Errorf("deployment not written client-side by helm: managed fields %+v", d.ManagedFields)
	}

	upgrade := append([]string{"upgrade", "csa", "./demo", "--server-side=false", "--wait", "--timeout", "90s",
		"--set", "podAnnotations.team=blue", "--set", "image.tag=1.17.0"}, demoValues...)
	h.run(t, append(upgrade, ns...)...)
	checkDemo(t, c, "csa", "csa-demo", demoRevision{image: "nginx:1.17.0", min: 1, max: 100, annotations: map[string]string{"team": "blue"}})

	toSSA := []string{"upgrade", "csa", "./demo", "--server-side=true", "--wait", "--timeout", "90s", "--set", "autoscaling.enabled=true"}
	h.run(t, append(toSSA, ns...)...)
	checkDemo(t, c, "csa", "csa-demo", demoRevision{image: "nginx:1.16.0", min: 1, max: 100})
	if _, err := c.NetworkingV1().Ingresses("csa").Get(context.Background(), "csa-demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ingress after it was turned off: %v, want NotFound", err)
	}
	h.run(t, append([]string{"rollback", "csa", "2", "--wait", "--timeout", "90s"}, ns...)...)
	checkDemo(t, c, "csa", "csa-demo", demoRevision{image: "nginx:1.17.0", min: 1, max: 100, annotations: map[string]string{"team": "blue"}})
	testserver.Contains(t, h.run(t, append([]string{"uninstall", "csa", "--wait", "--timeout", "60s"}, ns...)...), `release "csa" uninstalled`)
	checkNoRelease(t, dyn, "csa", "csa")
}

// helmConflict: another manager took spec.replicas (through the scale
// subresource, as kubectl scale does); Helm 4 applies without forcing, so
// the server refuses its change of replicas until --force-conflicts.
func helmConflict(t *testing.T, h *helmRunner, c kubernetes.Interface, dyn dynamic.Interface) {
	ctx := context.Background()
	ns := []string{"--namespace", "plain", "--wait", "--timeout", "90s"}
	h.run(t, append([]string{"install", "plain", "./demo", "--create-namespace"}, ns...)...)
	_, err := c.AppsV1().Deployments("plain").UpdateScale(ctx, "plain-demo", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "plain-demo", Namespace: "plain"},
		Spec:       autoscalingv1.ScaleSpec{Replicas: 3},
	}, metav1.UpdateOptions{FieldManager: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	msg := h.fail(t, append([]string{"upgrade", "plain", "./demo", "--set", "replicaCount=2"}, ns...)...)
	testserver.Contains(t, msg, `conflict with "ops" with subresource "scale"`, ".spec.replicas")
	h.run(t, append([]string{"upgrade", "plain", "./demo", "--set", "replicaCount=2", "--force-conflicts"}, ns...)...)
	d, err := c.AppsV1().Deployments("plain").Get(ctx, "plain-demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 || !rolledOut(d) {
		t.Errorf("deployment after --force-conflicts: replicas %d, status %+v; want 2 rolled out", *d.Spec.Replicas, d.Status)
	}
	h.run(t, "uninstall", "plain", "--namespace", "plain", "--wait")
	checkNoRelease(t, dyn, "plain", "plain")
}

// helmHookJob: charts often run a Job as a pre-install hook, and Helm
// waits for it to complete (its pod "exits 0" on simulated nodes), then
// deletes it (hook-succeeded); its pod goes with it.
func helmHookJob(t *testing.T, h *helmRunner, c kubernetes.Interface) {
	chart := filepath.Join(h.Dir, "hook")
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: hook\nversion: 0.1.0\n",
		"templates/job.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    "helm.sh/hook": pre-install
    "helm.sh/hook-delete-policy": hook-succeeded
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        ` + simnode.ExitCodeAnnotation + `: "0"
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: busybox
          command: ["true"]
`,
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  a: b\n",
	}
	for name, data := range files {
		p := filepath.Join(chart, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.run(t, "install", "hook", chart, "--namespace", "hooks", "--create-namespace", "--timeout", "30s")
	ctx := context.Background()
	if _, err := c.CoreV1().ConfigMaps("hooks").Get(ctx, "hook-cm", metav1.GetOptions{}); err != nil {
		t.Errorf("the release's ConfigMap after the hook: %v", err)
	}
	testserver.WaitFor(t, "the hook Job and its pod to go", 30*time.Second, func() (bool, error) {
		_, err := c.BatchV1().Jobs("hooks").Get(ctx, "hook-migrate", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("job: %v", err)
		}
		pods, err := c.CoreV1().Pods("hooks").List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=hook-migrate"})
		if err != nil || len(pods.Items) > 0 {
			return false, fmt.Errorf("pods: %v %d", err, len(pods.Items))
		}
		return true, nil
	})
}

// helmUninstall removes the demo release; only the test hook pod stays,
// as Helm leaves hooks without a delete policy.
func helmUninstall(t *testing.T, h *helmRunner, c kubernetes.Interface, dyn dynamic.Interface) {
	testserver.Contains(t, h.run(t, "uninstall", "demo", "--wait", "--timeout", "60s"), `release "demo" uninstalled`)
	if out := h.run(t, "list", "--all-namespaces", "--short"); strings.Contains(out, "demo") {
		t.Errorf("helm list after uninstall:\n%s", out)
	}
	checkNoRelease(t, dyn, "default", "demo")
}

// checkNoRelease checks that nothing of release is left in ns: the
// chart's objects (by its instance label), the replica sets and pods the
// garbage collector removes after them, and Helm's release secrets. Test
// hook pods stay, as Helm leaves hooks without a delete policy.
func checkNoRelease(t *testing.T, dyn dynamic.Interface, ns, release string) {
	t.Helper()
	instance := "app.kubernetes.io/instance=" + release
	for _, k := range []struct {
		gvr      schema.GroupVersionResource
		selector string
	}{
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, instance},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "services"}, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, instance},
		{schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}, instance},
		{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}, instance},
		{widgetGVR, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "owner=helm,name=" + release},
	} {
		testserver.WaitFor(t, k.gvr.Resource+" of release "+ns+"/"+release+" to go", 60*time.Second, func() (bool, error) {
			l, err := dyn.Resource(k.gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: k.selector})
			if apierrors.IsNotFound(err) && k.gvr == widgetGVR { // the CRD is not there (yet)
				return true, nil
			}
			if err != nil {
				return false, err
			}
			var left []string
			for _, o := range l.Items {
				if _, hook := o.GetAnnotations()["helm.sh/hook"]; !hook {
					left = append(left, o.GetName())
				}
			}
			return len(left) == 0, errors.New("left: " + strings.Join(left, ", "))
		})
	}
}
