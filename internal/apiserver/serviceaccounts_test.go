package apiserver_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/testserver"
)

// withToken is a client of s presenting token.
func withToken(t *testing.T, s *testserver.Server, token string) kubernetes.Interface {
	t.Helper()
	cfg := rest.AnonymousClientConfig(s.Loopback)
	cfg.BearerToken = token
	return kubernetes.NewForConfigOrDie(cfg)
}

func requestToken(ctx context.Context, c kubernetes.Interface, sa string, spec authenticationv1.TokenRequestSpec) (string, error) {
	tr, err := c.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func boundTo(kind, name string) *authenticationv1.BoundObjectReference {
	return &authenticationv1.BoundObjectReference{Kind: kind, APIVersion: "v1", Name: name}
}

// Pods get a projected service account volume unless they or their
// service account opt out, as upstream's ServiceAccount admission does.
func TestServiceAccountVolume(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	core := s.Client.CoreV1()
	for _, sa := range []*corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Name: "builder"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "quiet"}, AutomountServiceAccountToken: ptr.To(false)},
	} {
		if _, err := core.ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	own := corev1.Volume{Name: "own", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	for _, tc := range []struct {
		name      string
		sa        string
		automount *bool
		// ownMount: the second container mounts a volume of its own at the path.
		ownMount bool
		want     bool
	}{
		{name: "default", sa: "builder", want: true},
		{name: "pod opts out", sa: "builder", automount: ptr.To(false)},
		{name: "account opts out", sa: "quiet"},
		{name: "pod overrides its account", sa: "quiet", automount: ptr.To(true), want: true},
		{name: "account not created yet", sa: "later", want: true},
		{name: "a container mounts its own", sa: "builder", ownMount: true, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod(strings.ReplaceAll(tc.name, " ", "-"))
			pod.Spec.ServiceAccountName, pod.Spec.AutomountServiceAccountToken = tc.sa, tc.automount
			pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "side", Image: "busybox"})
			if tc.ownMount {
				pod.Spec.Volumes = []corev1.Volume{own}
				pod.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "own", MountPath: apiserver.ServiceAccountMountPath}}
			}
			got, err := core.Pods("default").Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var vol *corev1.Volume
			for i, v := range got.Spec.Volumes {
				if strings.HasPrefix(v.Name, "kube-api-access-") {
					vol = &got.Spec.Volumes[i]
				}
			}
			if (vol != nil) != tc.want {
				t.Fatalf("volumes %+v: want a kube-api-access volume: %v", got.Spec.Volumes, tc.want)
			}
			if vol == nil {
				return
			}
			src := vol.Projected
			if src == nil || len(src.Sources) != 3 || src.Sources[0].ServiceAccountToken == nil ||
				src.Sources[0].ServiceAccountToken.Path != "token" || *src.Sources[0].ServiceAccountToken.ExpirationSeconds != 3607 ||
				src.Sources[1].ConfigMap == nil || src.Sources[1].ConfigMap.Name != apiserver.RootCAConfigMap ||
				src.Sources[2].DownwardAPI == nil || src.Sources[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
				t.Fatalf("volume %+v", vol)
			}
			for _, c := range append(got.Spec.InitContainers, got.Spec.Containers...) {
				i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == apiserver.ServiceAccountMountPath })
				want := vol.Name
				if tc.ownMount && c.Name == "side" {
					want = "own"
				}
				if i < 0 || c.VolumeMounts[i].Name != want || (want == vol.Name && !c.VolumeMounts[i].ReadOnly) {
					t.Errorf("container %s mounts %+v, want %s read-only at %s", c.Name, c.VolumeMounts, want, apiserver.ServiceAccountMountPath)
				}
			}
		})
	}
}

// TokenRequest issues tokens that authenticate as the service account
// while it, and the pod a token is bound to, exist; RBAC then decides.
func TestServiceAccountTokens(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	admin := s.Client
	core := admin.CoreV1()
	if _, err := core.ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := newPod("web")
	pod.Spec.ServiceAccountName, pod.Spec.NodeName = "builder", "n1"
	if _, err := core.Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	token, err := requestToken(ctx, admin, "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: boundTo("Pod", "web")})
	if err != nil {
		t.Fatal(err)
	}
	builder := withToken(t, s, token)
	review, err := builder.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := review.Status.UserInfo
	if u.Username != "system:serviceaccount:default:builder" || !slices.Contains(u.Groups, "system:serviceaccounts") ||
		!slices.Contains(u.Groups, "system:serviceaccounts:default") || !slices.Equal(u.Extra["authentication.kubernetes.io/pod-name"], []string{"web"}) {
		t.Fatalf("whoami: %+v", u)
	}

	// RBAC: nothing until a Role allows it.
	if _, err := builder.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list pods without a role: %v, want 403", err)
	}
	if _, err := admin.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "builder-reads-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "builder", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserverWait(t, "the role to count", func() error {
		_, err := builder.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err
	})
	// What the Role allows, and nothing else: not another namespace's
	// pods, not secrets (a pod's account is no way around RBAC).
	if _, err := builder.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods in kube-system: %v, want 403", err)
	}
	if _, err := builder.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets in kube-system: %v, want 403", err)
	}

	// Audiences: a token for another audience does not reach the API, but
	// TokenReview with that audience accepts it.
	vault, err := requestToken(ctx, admin, "builder", authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withToken(t, s, vault).CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("a token for audience vault reached the API: %v", err)
	}
	for _, rc := range []struct {
		token     string
		audiences []string
		want      bool
	}{
		{vault, []string{"vault"}, true},
		{vault, nil, false},
		{token, nil, true},
		{token, []string{"vault"}, false},
		{"eyJhbGciOiJFUzI1NiJ9.e30.AAAA", nil, false},
	} {
		r, err := admin.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: rc.token, Audiences: rc.audiences}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Authenticated != rc.want || (rc.want && r.Status.User.Username != "system:serviceaccount:default:builder") {
			t.Errorf("TokenReview audiences %v: %+v, want authenticated %v", rc.audiences, r.Status, rc.want)
		}
	}

	// Bad requests, refused as upstream.
	for _, bc := range []struct {
		name  string
		sa    string
		spec  authenticationv1.TokenRequestSpec
		check func(error) bool
		want  string
	}{
		{"too short", "builder", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}, apierrors.IsInvalid, "spec.expirationSeconds"},
		{"bound to a node", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: boundTo("Node", "n1")}, apierrors.IsInvalid, "spec.boundObjectRef.kind"},
		{"no such account", "nobody", authenticationv1.TokenRequestSpec{}, apierrors.IsNotFound, `serviceaccounts "nobody" not found`},
		{"no such pod", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: boundTo("Pod", "gone")}, apierrors.IsNotFound, `pods "gone" not found`},
		{"pod of another account", "default-like", authenticationv1.TokenRequestSpec{BoundObjectRef: boundTo("Pod", "web")}, apierrors.IsBadRequest, "different serviceaccount"},
		{"stale uid", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: "web", UID: "old"}}, apierrors.IsConflict, "does not match"},
	} {
		if bc.sa == "default-like" {
			if _, err := core.ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: bc.sa}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := requestToken(ctx, admin, bc.sa, bc.spec)
		if err == nil || !bc.check(err) || !strings.Contains(err.Error(), bc.want) {
			t.Errorf("%s: %v, want an error containing %q", bc.name, err, bc.want)
		}
	}

	// A node may only ask for tokens bound to its own pods.
	for _, nc := range []struct {
		node string
		spec authenticationv1.TokenRequestSpec
		ok   bool
	}{
		{"n1", authenticationv1.TokenRequestSpec{BoundObjectRef: boundTo("Pod", "web")}, true},
		{"n1", authenticationv1.TokenRequestSpec{}, false},
		{"n2", authenticationv1.TokenRequestSpec{BoundObjectRef: boundTo("Pod", "web")}, false},
	} {
		_, err := requestToken(ctx, as(t, s, "system:node:"+nc.node, "system:nodes"), "builder", nc.spec)
		if (err == nil) != nc.ok || (err != nil && !apierrors.IsForbidden(err)) {
			t.Errorf("node %s asks for %+v: %v, want allowed %v", nc.node, nc.spec.BoundObjectRef, err, nc.ok)
		}
	}

	// Deleting the pod ends its tokens; recreating the account ends the others.
	refused := func(c kubernetes.Interface) error {
		_, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if apierrors.IsUnauthorized(err) {
			return nil
		}
		return fmt.Errorf("list pods: %v, want 401", err)
	}
	unbound, err := requestToken(ctx, admin, "builder", authenticationv1.TokenRequestSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Pods("default").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	testserverWait(t, "the pod's token to be refused", func() error {
		return refused(builder)
	})
	if _, err := withToken(t, s, unbound).CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("an unbound token stopped working with the pod: %v", err)
	}
	if err := core.ServiceAccounts("default").Delete(ctx, "builder", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserverWait(t, "a token of the old account to be refused", func() error {
		return refused(withToken(t, s, unbound))
	})
}
