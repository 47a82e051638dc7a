package apiserver_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/testserver"
)

// as returns a client of s that impersonates user in groups (the admin
// may impersonate anyone): what kubectl --as and --as-group send.
func as(t *testing.T, s *testserver.Server, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(s.Loopback)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthorization(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	admin := s.Client

	// Nobody's rights: refused with Kubernetes' message.
	alice := as(t, s, "alice")
	_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	want := `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("alice lists pods: %v, want 403 %q", err, want)
	}
	// view in default: read there, not elsewhere, and never secrets.
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserverWait(t, "alice's binding to count", func() error {
		_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err
	})
	for _, tc := range []struct {
		what string
		err  error
	}{
		{"list pods in kube-system", func() error { _, err := alice.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); return err }()},
		{"list secrets in default", func() error { _, err := alice.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); return err }()},
		{"create a configmap in default", func() error {
			_, err := alice.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		}()},
	} {
		if !apierrors.IsForbidden(tc.err) {
			t.Errorf("alice with view may %s: %v, want 403", tc.what, tc.err)
		}
	}
	// can-i through a SelfSubjectAccessReview.
	review, err := alice.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "pods"}},
	}, metav1.CreateOptions{})
	if err != nil || !review.Status.Allowed {
		t.Errorf("alice can-i get pods: %+v, %v; want allowed", review, err)
	}
	rules, err := alice.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"},
	}, metav1.CreateOptions{})
	if err != nil || len(rules.Status.ResourceRules) == 0 {
		t.Errorf("alice's rules in default: %+v, %v", rules, err)
	}

	// Escalation: bob may edit in default, but not grant admin there.
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bob-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "bob"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bob := as(t, s, "bob")
	testserverWait(t, "bob's binding to count", func() error {
		_, err := bob.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		return err
	})
	_, err = bob.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bob-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "bob"}},
	}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("bob (edit) binds cluster-admin: %v, want 403", err)
	}

	// A node reads the secrets of its own pods only.
	for _, sec := range []string{"mine", "theirs"} {
		if _, err := admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: sec}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := newPod("uses-mine")
	pod.Spec.NodeName = "n1"
	pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "mine"}}}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node := as(t, s, "system:node:n1", "system:nodes")
	testserverWait(t, "the node to read its pod's secret", func() error {
		_, err := node.CoreV1().Secrets("default").Get(ctx, "mine", metav1.GetOptions{})
		return err
	})
	if _, err := node.CoreV1().Secrets("default").Get(ctx, "theirs", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node reads a secret no pod of its uses: %v, want 403", err)
	}
	if _, err := as(t, s, "system:node:n2", "system:nodes").CoreV1().Secrets("default").Get(ctx, "mine", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("another node reads n1's pod's secret: %v, want 403", err)
	}
}

// testserverWait retries f until it succeeds: a binding counts once the
// server's watch has seen it.
func testserverWait(t *testing.T, what string, f func() error) {
	t.Helper()
	testserver.WaitFor(t, what, 10*time.Second, func() (bool, error) { err := f(); return err == nil, err })
}

// A client certificate of the cluster's CA authenticates its subject: the
// common name is the user, the organizations its groups; RBAC then decides.
func TestClientCertificateUsers(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	ca, err := pki.EnsureCA(filepath.Join(s.DataDir, "pki"), "wharf-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := ca.IssueClient(dir, "carol", "carol", []string{"auditors"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(s.Loopback)
	cfg.BearerToken = ""
	cfg.TLSClientConfig.CertFile, cfg.TLSClientConfig.KeyFile = certFile, keyFile
	carol := kubernetes.NewForConfigOrDie(cfg)

	review, err := carol.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "carol" || !slices.Contains(u.Groups, "auditors") || !slices.Contains(u.Groups, "system:authenticated") {
		t.Errorf("whoami: %+v, want carol in auditors and system:authenticated", u)
	}
	if _, err := carol.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("carol lists pods without a binding: %v, want 403", err)
	}
	if _, err := s.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "auditors-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "auditors"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserverWait(t, "the auditors' binding to count", func() error {
		_, err := carol.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err
	})
	// A certificate of another CA is refused in the handshake.
	other, err := pki.EnsureCA(t.TempDir(), "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = other.IssueClient(t.TempDir(), "mallory", "admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSClientConfig.CertFile, cfg.TLSClientConfig.KeyFile = certFile, keyFile
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("a certificate of another CA was accepted")
	}
}
