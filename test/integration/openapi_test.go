//go:build integration

package integration

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"wharf.dev/wharf/internal/testserver"
)

// The Deployment applied first: two containers with ports and env.
const openAPIDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: merge
spec:
  selector:
    matchLabels: {app: merge}
  template:
    metadata:
      labels: {app: merge}
    spec:
      containers:
      - name: web
        image: nginx
        ports:
        - {name: http, containerPort: 80}
        - {name: https, containerPort: 443}
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: side
        image: busybox
        command: [sleep, 1d]
        env:
        - {name: C, value: "3"}
`

// The changed Deployment: web's env A changed and its https port removed,
// a container added.
const openAPIDeploymentChanged = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: merge
spec:
  selector:
    matchLabels: {app: merge}
  template:
    metadata:
      labels: {app: merge}
    spec:
      containers:
      - name: web
        image: nginx
        ports:
        - {name: http, containerPort: 80}
        env:
        - {name: A, value: "10"}
        - {name: B, value: "2"}
      - name: side
        image: busybox
        command: [sleep, 1d]
        env:
        - {name: C, value: "3"}
      - name: extra
        image: redis
        ports:
        - {containerPort: 6379}
`

const openAPIUnknownField = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: unknown
spec:
  foo: bar
  selector:
    matchLabels: {app: unknown}
  template:
    metadata:
      labels: {app: unknown}
    spec:
      containers:
      - {name: web, image: nginx}
`

// container is what the test compares of a container.
type container struct {
	Name, Image string
	Command     []string
	Ports       []string
	Env         []string
}

func containersOf(d *appsv1.Deployment) []container {
	var out []container
	for _, c := range d.Spec.Template.Spec.Containers {
		cc := container{Name: c.Name, Image: c.Image, Command: c.Command}
		for _, p := range c.Ports {
			cc.Ports = append(cc.Ports, p.Name+":"+string(p.Protocol)+":"+strconv.Itoa(int(p.ContainerPort)))
		}
		for _, e := range c.Env {
			cc.Env = append(cc.Env, e.Name+"="+e.Value)
		}
		out = append(out, cc)
	}
	return out
}

// TestOpenAPI runs what the OpenAPI documents are for with every kubectl
// release: explain, client-side apply's strategic merge patches computed
// from the schemas' patch metadata (v3, or v2 for 1.27 and 1.28), and
// strict field validation.
func TestOpenAPI(t *testing.T) {
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	client := srv.client()
	for _, minor := range []string{"27", "28", "29", "30", "31", "32", "33"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			ns := "openapi-" + minor
			ctx := testContext(t, 60e9)
			if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}

			out := k.Run("explain", "pods.spec.containers")
			testserver.Contains(t, out, "List of containers belonging to the pod", "image", "livenessProbe")
			out = k.Run("explain", "deployments.spec.strategy")
			testserver.Contains(t, out, "The deployment strategy to use to replace existing pods with new ones", "rollingUpdate")

			testserver.Contains(t, k.RunIn(openAPIDeployment, "apply", "-n", ns, "-f", "-"), "deployment.apps/merge created")
			testserver.Contains(t, k.RunIn(openAPIDeployment, "apply", "-n", ns, "-f", "-"), "deployment.apps/merge unchanged")
			// Another writer adds an env var apply does not own: a merge
			// by container and env name keeps it (first: there the server's
			// strategic merge puts a new item), a replaced list would not.
			patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"side","env":[{"name":"D","value":"4"}]}]}}}}`)
			if _, err := client.AppsV1().Deployments(ns).Patch(ctx, "merge", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			testserver.Contains(t, k.RunIn(openAPIDeploymentChanged, "apply", "-n", ns, "-f", "-"), "deployment.apps/merge configured")
			d, err := client.AppsV1().Deployments(ns).Get(ctx, "merge", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := []container{
				{Name: "web", Image: "nginx", Ports: []string{"http:TCP:80"}, Env: []string{"A=10", "B=2"}},
				{Name: "side", Image: "busybox", Command: []string{"sleep", "1d"}, Env: []string{"D=4", "C=3"}},
				{Name: "extra", Image: "redis", Ports: []string{":TCP:6379"}},
			}
			if diff := cmp.Diff(want, containersOf(d)); diff != "" {
				t.Errorf("containers after the second apply (-want +got):\n%s", diff)
			}

			cmd := k.Cmd(openAPIUnknownField, "create", "-n", ns, "-f", "-")
			outb, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("create with an unknown field succeeded:\n%s", outb)
			}
			if !strings.Contains(string(outb), `unknown field "spec.foo"`) {
				t.Errorf("create with an unknown field:\n%s\nwant the server's strict decoding error", outb)
			}
		})
	}
}
