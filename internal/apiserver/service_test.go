package apiserver_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/testserver"
)

// startService starts a service-mode server with a template "k8s" in
// "default" and a public one "shared" in project "ops".
func startService(t *testing.T) (*testserver.Server, *wharf.Client) {
	t.Helper()
	s := testserver.Start(t, testserver.Service)
	c, err := wharf.NewForConfig(s.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tpl := range []*wharfv1.ClusterTemplate{
		{ObjectMeta: metav1.ObjectMeta{Name: "k8s", Namespace: "default"}, Spec: wharfv1.ClusterTemplateSpec{COE: "kubernetes"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "ops"}, Spec: wharfv1.ClusterTemplateSpec{COE: "kubernetes", Public: true}},
		{ObjectMeta: metav1.ObjectMeta{Name: "private", Namespace: "ops"}, Spec: wharfv1.ClusterTemplateSpec{COE: "kubernetes"}},
	} {
		if _, err := c.ClusterTemplates(tpl.Namespace).Create(ctx, tpl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return s, c
}

func newCluster(name, template string) *wharfv1.Cluster {
	return &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: wharfv1.ClusterSpec{Template: template, NodeCount: 1}}
}

// causeOf returns the message of the status cause on field, "" if none.
func causeOf(err error, field string) string {
	if se, ok := err.(apierrors.APIStatus); ok && se.Status().Details != nil {
		for _, c := range se.Status().Details.Causes {
			if c.Field == field {
				return c.Message
			}
		}
	}
	return ""
}

func TestClusterTemplateAdmission(t *testing.T) {
	_, c := startService(t)
	ctx := ctxT(t)
	tests := []struct {
		name, template string
		wantErr        string // cause on spec.template; "" accepted
	}{
		{"own", "k8s", ""},
		{"public", "ops/shared", ""},
		{"missing", "nope", `cluster template "nope" not found in project "default"`},
		{"private-of-another-project", "ops/private", `cluster template "ops/private" not found in project "default"`},
		{"missing-project", "elsewhere/k8s", `cluster template "elsewhere/k8s" not found in project "default"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Clusters("default").Create(ctx, newCluster(tt.name, tt.template), metav1.CreateOptions{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(causeOf(err, "spec.template"), tt.wantErr) {
				t.Fatalf("got %v, want 422 on spec.template: %s", err, tt.wantErr)
			}
			if _, err := c.Clusters("default").Get(ctx, tt.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("refused cluster was stored: %v", err)
			}
		})
	}

	// A template in use keeps its content; who sees it may change.
	if err := c.ClusterTemplates("ops").Delete(ctx, "shared", metav1.DeleteOptions{}); !apierrors.IsConflict(err) ||
		!strings.Contains(err.Error(), "used by clusters default/public") {
		t.Errorf("delete of a used template: %v", err)
	}
	tpl, err := c.ClusterTemplates("default").Get(ctx, "k8s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tpl.Spec.Provider = "ssh"
	tpl.Spec.SSH = &wharfv1.SSHHosts{Hosts: []string{"h1"}, KeySecret: "key"}
	if _, err := c.ClusterTemplates("default").Update(ctx, tpl, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("provider change of a used template: %v", err)
	}
	tpl, _ = c.ClusterTemplates("default").Get(ctx, "k8s", metav1.GetOptions{})
	tpl.Spec.Public = true
	if _, err := c.ClusterTemplates("default").Update(ctx, tpl, metav1.UpdateOptions{}); err != nil {
		t.Errorf("making a used template public: %v", err)
	}
}

func TestClusterDeleteRefusedWhileCreating(t *testing.T) {
	_, c := startService(t)
	ctx := ctxT(t)
	clusters := c.Clusters("default")
	cl := newCluster("demo", "k8s")
	cl.Finalizers = []string{"wharf.dev/cluster"}
	cl, err := clusters.Create(ctx, cl, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl.Status.Status = wharfv1.StatusCreateInProgress
	if cl, err = clusters.UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = clusters.Delete(ctx, "demo", metav1.DeleteOptions{})
	want := "cluster demo is being created (CREATE_IN_PROGRESS): wait until it is CREATE_COMPLETE or CREATE_FAILED"
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("delete while creating: %v, want 409 %q", err, want)
	}
	if got, err := clusters.Get(ctx, "demo", metav1.GetOptions{}); err != nil || got.DeletionTimestamp != nil {
		t.Fatalf("refused delete touched the cluster: %v %v", got.DeletionTimestamp, err)
	}

	// Once created, deleting waits for the controller's finalizer, whose
	// removal is not held up by admission.
	cl.Status.Status = wharfv1.StatusCreateComplete
	if _, err = clusters.UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := clusters.Delete(ctx, "demo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := clusters.Get(ctx, "demo", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("not being deleted: %v", err)
	}
	// The template may go away meanwhile only after the cluster.
	if err := c.ClusterTemplates("default").Delete(ctx, "k8s", metav1.DeleteOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("template deleted under a deleting cluster: %v", err)
	}
	got.Finalizers = nil
	if _, err := clusters.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clusters.Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("cluster left after its finalizer went: %v", err)
	}
}

func TestNodeGroupAdmission(t *testing.T) {
	_, c := startService(t)
	ctx := ctxT(t)
	if _, err := c.Clusters("default").Create(ctx, newCluster("demo", "k8s"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	groups := c.NodeGroups("default")
	ng := func(name, cluster, role string) *wharfv1.NodeGroup {
		return &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: wharfv1.NodeGroupSpec{Cluster: cluster, Role: role, NodeCount: 1}}
	}
	if _, err := groups.Create(ctx, ng("other-gpu", "other", ""), metav1.CreateOptions{}); !apierrors.IsInvalid(err) ||
		causeOf(err, "spec.cluster") != `Invalid value: "other": cluster "other" not found in project "default"` {
		t.Errorf("group of a missing cluster: %v", err)
	}
	for _, g := range []*wharfv1.NodeGroup{ng("demo-default-master", "demo", "master"), ng("demo-default-worker", "demo", ""), ng("demo-gpu", "demo", "")} {
		if _, err := groups.Create(ctx, g, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := groups.Delete(ctx, "demo-default-worker", metav1.DeleteOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("delete of a default group of a live cluster: %v", err)
	}
	if err := groups.Delete(ctx, "demo-gpu", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete of another group: %v", err)
	}
}

// TestServiceKindsSpeakJSON: the wharf.dev kinds have no protobuf form;
// a client preferring protobuf (as in-process clients do) gets JSON.
func TestServiceKindsSpeakJSON(t *testing.T) {
	s, _ := startService(t)
	rt, err := rest.TransportFor(s.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		accept, wantType string
		wantCode         int
	}{
		{"application/vnd.kubernetes.protobuf,application/json", "application/json", http.StatusOK},
		{"application/vnd.kubernetes.protobuf", "application/json", http.StatusNotAcceptable},
	} {
		for _, path := range []string{"/apis/wharf.dev/v1/namespaces/default/clustertemplates", "/apis/wharf.dev/v1/namespaces/default/clustertemplates/k8s"} {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", s.Loopback.Host+path, nil)
			req.Header.Set("Accept", tt.accept)
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("%s as %s: %d %s, want %d %s\n%s", path, tt.accept, resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantCode, tt.wantType, body)
			}
		}
	}
}

func TestKubectlGetClusters(t *testing.T) {
	s, c := startService(t)
	k := testserver.NewKubectl(t, "33", s.AdminKubeconfig)
	if _, err := c.Clusters("default").Create(ctxT(t), newCluster("demo", "k8s"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out := k.Run("get", "clusters")
	testserver.Contains(t, out, "NAME", "STATUS", "HEALTH", "MASTERS", "NODES", "API", "AGE", "demo", "<none>")
	testserver.Contains(t, k.Run("get", "ctpl", "-A"), "k8s", "shared", "kubernetes", "local")
	testserver.Contains(t, k.Run("get", "wharf", "-o", "name"), "cluster.wharf.dev/demo", "clustertemplate.wharf.dev/k8s")
	testserver.Contains(t, k.Run("get", "cl", "--field-selector", "spec.template=k8s", "-o", "jsonpath={.items[*].spec.masterCount}"), "1")
}
