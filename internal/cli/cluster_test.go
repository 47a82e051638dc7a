package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

// newClusterEnv is a service with the template k8s-local and the cluster
// demo (1 master, 2 nodes) CREATE_COMPLETE.
func newClusterEnv(t *testing.T) *serviceEnv {
	e := newServiceEnv(t)
	e.must("cluster", "template", "create", "k8s-local", "--coe", "kubernetes", "--labels", "auto_healing_enabled=true,kube_tag=v1")
	e.must("cluster", "create", "demo", "--template", "k8s-local", "--master-count", "1", "--node-count", "2")
	e.setStatus("demo", func(s *wharfv1.ClusterStatus) {
		s.Status, s.HealthStatus = wharfv1.StatusCreateComplete, wharfv1.HealthHealthy
		s.APIAddress, s.MasterAddresses, s.NodeAddresses = "https://10.123.0.2:6443", []string{"10.123.0.2"}, []string{"10.123.0.3", "10.123.0.4"}
	})
	return e
}

func TestClusterListAndShowFormats(t *testing.T) {
	e := newClusterEnv(t)
	out := e.must("cluster", "list")
	testserver.Contains(t, out, "| uuid ", "| name | node_count | master_count | status          | health_status |", "| demo | 2          | 1            | CREATE_COMPLETE | HEALTHY       |")

	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must("cluster", "list", "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["name"] != "demo" || list[0]["node_count"] != float64(2) || len(list[0]) != len(clusterListColumns) {
		t.Errorf("list -f json: %v", list)
	}
	if got := e.must("cluster", "list", "-f", "value", "-c", "name", "-c", "status"); got != "demo CREATE_COMPLETE\n" {
		t.Errorf("list -f value: %q", got)
	}

	out = e.must("cluster", "show", "demo")
	testserver.Contains(t, out, "| Field ", "| Value ", "| status               | CREATE_COMPLETE", "| api_address          | https://10.123.0.2:6443",
		"| node_addresses       | 10.123.0.3, 10.123.0.4", "| labels               | auto_healing_enabled=true, kube_tag=v1", "| project_id           | default")
	var shown map[string]any
	if err := json.Unmarshal([]byte(e.must("cluster", "show", "demo", "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "demo", "master_count": float64(1), "create_timeout": float64(10), "cluster_template_id": "k8s-local",
		"node_addresses": []any{"10.123.0.3", "10.123.0.4"}, "faults": map[string]any{}, "health_status": "HEALTHY"}
	for k, v := range want {
		if diff := cmp.Diff(v, shown[k]); diff != "" {
			t.Errorf("show -f json %s (-want +got):\n%s", k, diff)
		}
	}
	if err := yaml.Unmarshal([]byte(e.must("cluster", "show", "demo", "-f", "yaml")), &shown); err != nil || shown["status"] != "CREATE_COMPLETE" {
		t.Errorf("show -f yaml: %v %v", shown, err)
	}
	if got := e.must("cluster", "show", "demo", "-f", "value", "-c", "api_address"); got != "https://10.123.0.2:6443\n" {
		t.Errorf("show -f value -c api_address: %q", got)
	}
	e.fails([]string{"cluster", "show", "demo", "-c", "keypair"}, `unknown field "keypair"`)
	e.fails([]string{"cluster", "list", "-f", "csv"}, `unknown format "csv"`)
	e.fails([]string{"cluster", "show", "nope"}, `cluster "nope" not found in project "default"`)
}

// TestClusterBadInput: each mistake is named, and nothing is stored.
func TestClusterBadInput(t *testing.T) {
	e := newClusterEnv(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"cluster", "create", "x", "--template", "nope"}, []string{`--template (spec.template)`, `cluster template "nope" not found in project "default"`}},
		{[]string{"cluster", "create", "x", "--template", "k8s-local", "--master-count", "2"}, []string{"--master-count (spec.masterCount): Invalid value: 2: must be 1, 3, 5 or 7"}},
		{[]string{"cluster", "create", "x", "--template", "k8s-local", "--master-count", "4"}, []string{"--master-count (spec.masterCount): Invalid value: 4: must be 1, 3, 5 or 7"}},
		{[]string{"cluster", "recover", "demo"}, []string{"spec.recover: Forbidden: a cluster of one master has no quorum to rebuild"}},
		{[]string{"cluster", "recover", "nope"}, []string{`cluster "nope" not found`}},
		{[]string{"cluster", "create", "x", "--template", "k8s-local", "--node-count", "-1"}, []string{"--node-count (spec.nodeCount)", "must be greater than or equal to 0"}},
		{[]string{"cluster", "create", "demo", "--template", "k8s-local"}, []string{`cluster "demo" already exists in project "default"`}},
		{[]string{"cluster", "create", "My_Cluster", "--template", "k8s-local"}, []string{`invalid cluster "My_Cluster"`, "name: Invalid value", "DNS-1035 label"}},
		{[]string{"cluster", "create", "x"}, []string{"--template is required"}},
		{[]string{"cluster", "create", "x", "--template", "k8s-local", "--timeout", "soon"}, []string{`--timeout "soon"`}},
		{[]string{"cluster", "create", "x", "--template", "k8s-local", "--labels", "novalue"}, []string{`label "novalue": want key=value`}},
		{[]string{"cluster", "create", "x", "--template", "k8s-local", "--project", "nowhere"}, []string{`project "nowhere" not found`}},
		{[]string{"cluster", "create", "x", "--template", "ops/k8s-local", "--merge-labels"}, []string{`cluster template "ops/k8s-local" not found in project "default"`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			e.t = t
			e.fails(tt.args, tt.want...)
		})
	}
	e.t = t
	list, err := e.c.Clusters("").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("clusters after bad input: %d, %v", len(list.Items), err)
	}

	e.setStatus("demo", func(s *wharfv1.ClusterStatus) { s.Status = wharfv1.StatusCreateInProgress })
	e.fails([]string{"cluster", "delete", "demo"}, "cluster demo is being created (CREATE_IN_PROGRESS): wait until it is CREATE_COMPLETE or CREATE_FAILED")
	e.fails([]string{"cluster", "template", "delete", "k8s-local"}, `cluster template "k8s-local" is used by clusters demo`)
}

func TestClusterCreateLabels(t *testing.T) {
	e := newClusterEnv(t)
	e.must("cluster", "create", "own", "--template", "k8s-local", "--labels", "kube_tag=v2", "--labels", "extra=1")
	e.must("cluster", "create", "merged", "--template", "k8s-local", "--labels", "kube_tag=v2", "--merge-labels", "--timeout", "90s")
	for name, want := range map[string]map[string]string{
		"own":    {"kube_tag": "v2", "extra": "1"},
		"merged": {"kube_tag": "v2", "auto_healing_enabled": "true"},
	} {
		c, err := e.c.Clusters("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, c.Spec.Labels); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", name, diff)
		}
	}
	out := e.must("cluster", "show", "own", "-f", "value", "-c", "labels", "-c", "labels_added", "-c", "labels_overridden", "-c", "labels_skipped")
	if want := "extra=1, kube_tag=v2\nextra=1\nkube_tag=v2\nauto_healing_enabled=true\n"; out != want {
		t.Errorf("label changes:\n%s\nwant:\n%s", out, want)
	}
	if got := e.must("cluster", "show", "merged", "-f", "value", "-c", "create_timeout"); got != "2\n" {
		t.Errorf("create_timeout of 90s shows %q minutes", got)
	}
}

// TestClusterCreateWait plays the controller while `create --wait` prints
// the steps as they come.
func TestClusterCreateWait(t *testing.T) {
	e := newClusterEnv(t)
	for _, tt := range []struct {
		name    string
		final   func(*wharfv1.ClusterStatus)
		wantOut []string
		wantErr string
	}{
		{name: "ok", final: func(s *wharfv1.ClusterStatus) { s.Status = wharfv1.StatusCreateComplete },
			wantOut: []string{"Creating cluster ok: 1 master, 3 nodes from template k8s-local", "s  CREATE_IN_PROGRESS\n", "s  credentials\n", "s  hosts\n", "s  nodes ready\n", "s  CREATE_COMPLETE\n", "Cluster ok created in "}},
		{name: "bad", final: func(s *wharfv1.ClusterStatus) {
			s.Status, s.StatusReason, s.Faults = wharfv1.StatusCreateFailed, "host bad-node-2 did not start", map[string]string{"bad-node-2": "exec: wharf: not found"}
		}, wantErr: "cluster bad CREATE_FAILED: host bad-node-2 did not start\n  bad-node-2: exec: wharf: not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				out string
				err error
			}
			done := make(chan result)
			go func() {
				out, err := e.run("cluster", "create", tt.name, "--template", "k8s-local", "--node-count", "3", "--wait")
				done <- result{out, err}
			}()
			testserver.WaitFor(t, "cluster created", 30*time.Second, func() (bool, error) {
				_, err := e.c.Clusters("default").Get(context.Background(), tt.name, metav1.GetOptions{})
				return err == nil, err
			})
			for _, step := range []string{"credentials", "hosts", "nodes ready"} {
				e.setStatus(tt.name, func(s *wharfv1.ClusterStatus) {
					s.Status = wharfv1.StatusCreateInProgress
					s.Steps = append(s.Steps, wharfv1.Step{Name: step, At: metav1.Now()})
				})
			}
			e.setStatus(tt.name, tt.final)
			r := <-done
			if tt.wantErr != "" {
				if r.err == nil || r.err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", r.err, tt.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			testserver.Contains(t, r.out, tt.wantOut...)
			if i, j := strings.Index(r.out, "credentials"), strings.Index(r.out, "nodes ready"); i > j {
				t.Errorf("steps out of order:\n%s", r.out)
			}
		})
	}
}

func TestClusterDeleteWait(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	c, _ := e.c.Clusters("default").Get(ctx, "demo", metav1.GetOptions{})
	c.Finalizers = []string{"wharf.dev/cluster"}
	if _, err := e.c.Clusters("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	var out string
	go func() {
		var err error
		out, err = e.run("cluster", "delete", "demo", "--wait")
		done <- err
	}()
	testserver.WaitFor(t, "deletion started", 30*time.Second, func() (bool, error) {
		c, err := e.c.Clusters("default").Get(ctx, "demo", metav1.GetOptions{})
		return err == nil && c.DeletionTimestamp != nil, err
	})
	e.setStatus("demo", func(s *wharfv1.ClusterStatus) { s.Status = wharfv1.StatusDeleteInProgress })
	c, _ = e.c.Clusters("default").Get(ctx, "demo", metav1.GetOptions{})
	c.Finalizers = nil
	if _, err := e.c.Clusters("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testserver.Contains(t, out, "Request to delete cluster demo has been accepted.", "Cluster demo deleted in ")
	e.fails([]string{"cluster", "delete", "demo"}, `cluster "demo" not found in project "default"`)
}

func TestClusterConfig(t *testing.T) {
	e := newClusterEnv(t)
	e.fails([]string{"cluster", "config", "demo"}, "cluster demo has no credentials (Secret demo-credentials in project default)")
	if _, err := e.s.Client.CoreV1().Secrets("default").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-credentials"},
		Data:       map[string][]byte{"ca.crt": []byte("CA PEM"), "admin-token": []byte("s3cret"), "ca.key": []byte("key")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load([]byte(e.must("cluster", "config", "demo")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster].Server != "https://10.123.0.2:6443" || string(cfg.Clusters[ctx.Cluster].CertificateAuthorityData) != "CA PEM" ||
		cfg.AuthInfos[ctx.AuthInfo].Token != "s3cret" {
		t.Errorf("kubeconfig: %+v", cfg)
	}
	if _, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig(); err != nil {
		t.Errorf("not a usable kubeconfig: %v", err)
	}
	e.must("cluster", "create", "young", "--template", "k8s-local")
	e.fails([]string{"cluster", "config", "young"}, "cluster young has no API address yet")
}

// clusterBehind makes demo's API a real control plane (a second test
// server) and stores its CA and admin token as the service's controller
// would, in the Secret demo-credentials.
func clusterBehind(t *testing.T, e *serviceEnv) *testserver.Server {
	t.Helper()
	cluster := testserver.Start(t)
	admin, err := clientcmd.LoadFromFile(cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kctx := admin.Contexts[admin.CurrentContext]
	e.setStatus("demo", func(s *wharfv1.ClusterStatus) { s.APIAddress = cluster.URL })
	if _, err := e.s.Client.CoreV1().Secrets("default").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-credentials"},
		Data: map[string][]byte{
			"ca.crt": admin.Clusters[kctx.Cluster].CertificateAuthorityData, "admin-token": []byte(admin.AuthInfos[kctx.AuthInfo].Token),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cluster
}

// TestClusterConfigUser: --user gives a kubeconfig whose client
// certificate the cluster signed through a CertificateSigningRequest; the
// user is who RBAC says, nothing more.
func TestClusterConfigUser(t *testing.T) {
	e := newClusterEnv(t)
	cluster := clusterBehind(t, e)
	ctx := context.Background()

	file := filepath.Join(t.TempDir(), "alice.kubeconfig")
	e.must("cluster", "config", "demo", "--user", "alice", "--group", "devs", "--group", "ops", "--expiration", "2h", "--output-file", file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig file: %v, %v; want mode 0600", fi, err)
	}
	cfg, err := clientcmd.LoadFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if cfg.CurrentContext != "demo-alice" || kctx == nil || kctx.Cluster != "demo" || kctx.AuthInfo != "demo-alice" ||
		cfg.Clusters["demo"].Server != cluster.URL {
		t.Fatalf("kubeconfig names: current %q, contexts %v, clusters %v", cfg.CurrentContext, cfg.Contexts, cfg.Clusters)
	}
	if u := cfg.AuthInfos["demo-alice"]; u.Token != "" || len(u.ClientCertificateData) == 0 || len(u.ClientKeyData) == 0 {
		t.Fatalf("user demo-alice: token %q, %d bytes of certificate, %d of key", u.Token, len(u.ClientCertificateData), len(u.ClientKeyData))
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	alice := kubernetes.NewForConfigOrDie(rc)
	review, err := alice.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "alice" || !slices.Contains(u.Groups, "devs") || !slices.Contains(u.Groups, "ops") {
		t.Errorf("whoami: %+v, want alice in devs and ops", u)
	}
	if _, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists pods with no binding: %v, want 403", err)
	}
	if _, err := cluster.Client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "devs-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "devs"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "the devs binding to count", 10*time.Second, func() (bool, error) {
		_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil, err
	})
	// The request stays as a record: who asked, who approved, for how long.
	list, err := cluster.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("requests: %v, %v", list, err)
	}
	csr := list.Items[0]
	if !strings.HasPrefix(csr.Name, "wharf-user-alice-") || csr.Spec.Username != "admin" || *csr.Spec.ExpirationSeconds != 7200 ||
		len(csr.Status.Conditions) != 1 || csr.Status.Conditions[0].Reason != "WharfClusterConfig" {
		t.Errorf("request %s: %+v %+v", csr.Name, csr.Spec, csr.Status.Conditions)
	}

	// Without --user: the admin's kubeconfig, as before.
	admin, err := clientcmd.Load([]byte(e.must("cluster", "config", "demo")))
	if err != nil || admin.AuthInfos["demo-admin"] == nil || admin.AuthInfos["demo-admin"].Token == "" {
		t.Errorf("admin kubeconfig: %+v, %v", admin, err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--group", "devs"}, "--group needs --user"},
		{[]string{"--user", "eve", "--group", "system:masters"}, "never signs client certificates in system:masters"},
		{[]string{"--user", "eve", "--expiration", "1m"}, "must be at least 10m0s"},
		{[]string{"--user", ""}, ""}, // an empty --user is no user: the admin's kubeconfig
	} {
		args := append([]string{"cluster", "config", "demo"}, tt.args...)
		if tt.want == "" {
			e.must(args...)
			continue
		}
		e.fails(args, tt.want)
	}
}
