package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// escalationPolicy: bob edits team, alice administers it, dave reads pods
// there, erin may bind cluster-admin in team, frank may escalate roles in
// team, and root is in system:masters.
func escalationGuard(t *testing.T) (*Guard, *RBAC) {
	t.Helper()
	p := newMemPolicy().withDefaults()
	p.addRoleBinding(roleBinding("team", "alice-admin", "ClusterRole", "admin", userSubject("alice")))
	p.addRoleBinding(roleBinding("team", "bob-edit", "ClusterRole", "edit", userSubject("bob")))
	p.addRole(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{rule(v("get"), in(""), "pods")}})
	p.addRoleBinding(roleBinding("team", "dave-pods", "Role", "pod-reader", userSubject("dave")))
	p.addRole(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "binder"},
		Rules: []rbacv1.PolicyRule{
			named(rule(v("bind"), in(rbacv1.GroupName), "clusterroles"), "cluster-admin"),
			rule(v("create"), in(rbacv1.GroupName), "rolebindings"),
		}})
	p.addRoleBinding(roleBinding("team", "erin-binder", "Role", "binder", userSubject("erin")))
	p.addRole(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "escalator"},
		Rules: []rbacv1.PolicyRule{rule(v("escalate", "create", "update"), in(rbacv1.GroupName), "roles")}})
	p.addRoleBinding(roleBinding("team", "frank-escalator", "Role", "escalator", userSubject("frank")))
	// gus holds every rule of view cluster-wide, but not cluster-admin.
	p.addClusterRoleBinding(clusterRoleBinding("gus-view", "view", userSubject("gus")))
	a := NewRBAC(p)
	return NewGuard(a, Chain(NewNode(podGraph{}), a)), a
}

func TestConfirmNoEscalationMessage(t *testing.T) {
	_, a := escalationGuard(t)
	dave := userInfo("dave")
	rules := []rbacv1.PolicyRule{rule(v("get", "list"), in(""), "pods", "secrets")}
	err := a.ConfirmNoEscalation(context.Background(), dave, rules, "team")
	want := `user "dave" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["pods"], Verbs:["list"]}
{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}`
	if err == nil || err.Error() != want {
		t.Fatalf("ConfirmNoEscalation = %v, want\n%s", err, want)
	}
	if !errors.Is(err, ErrEscalation) {
		t.Error("error is not ErrEscalation")
	}
	if err := a.ConfirmNoEscalation(context.Background(), dave, []rbacv1.PolicyRule{rule(v("get"), in(""), "pods")}, "team"); err != nil {
		t.Errorf("granting a held rule: %v", err)
	}
	if err := a.ConfirmNoEscalation(context.Background(), dave, []rbacv1.PolicyRule{rule(v("get"), in(""), "pods")}, "other"); err == nil {
		t.Error("dave granted pods in a namespace he has no rights in")
	}
}

func TestGuard(t *testing.T) {
	g, _ := escalationGuard(t)
	ctx := context.Background()
	role := func(ns string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Rules: rules}
	}
	secretsRole := role("team", rule(read, in(""), "secrets"))
	tests := []struct {
		name  string
		check func() error
		want  string // "" for allowed, else part of the error
	}{
		{"edit binds cluster-admin", func() error {
			return g.CheckRoleBinding(ctx, userInfo("bob"), roleBinding("team", "x", "ClusterRole", "cluster-admin", userSubject("mallory")), nil)
		}, "is attempting to grant RBAC permissions not currently held"},
		{"edit binds cluster-admin cluster-wide", func() error {
			return g.CheckClusterRoleBinding(ctx, userInfo("bob"), clusterRoleBinding("x", "cluster-admin", userSubject("bob")), nil)
		}, `clusterrolebindings.rbac.authorization.k8s.io "x" is forbidden`},
		{"edit binds edit", func() error {
			return g.CheckRoleBinding(ctx, userInfo("bob"), roleBinding("team", "x", "ClusterRole", "edit", userSubject("mallory")), nil)
		}, ""},
		// admin holds rules edit lacks: edit cannot hand out admin.
		{"edit binds admin", func() error {
			return g.CheckRoleBinding(ctx, userInfo("bob"), roleBinding("team", "x", "ClusterRole", "admin", userSubject("mallory")), nil)
		}, `Resources:["rolebindings"]`},
		{"admin binds admin in its namespace", func() error {
			return g.CheckRoleBinding(ctx, userInfo("alice"), roleBinding("team", "x", "ClusterRole", "admin", userSubject("mallory")), nil)
		}, ""},
		{"admin binds admin elsewhere", func() error {
			return g.CheckRoleBinding(ctx, userInfo("alice"), roleBinding("other", "x", "ClusterRole", "admin", userSubject("mallory")), nil)
		}, "not currently held"},
		{"bind verb lets bind cluster-admin in team", func() error {
			return g.CheckRoleBinding(ctx, userInfo("erin"), roleBinding("team", "x", "ClusterRole", "cluster-admin", userSubject("erin")), nil)
		}, ""},
		// The bind verb is asked in the binding's namespace: erin's, from
		// a RoleBinding in team, does not reach cluster-wide.
		{"bind verb in team does not bind cluster-wide", func() error {
			return g.CheckClusterRoleBinding(ctx, userInfo("erin"), clusterRoleBinding("x", "cluster-admin", userSubject("erin")), nil)
		}, "not currently held"},
		{"bind verb names its role", func() error {
			return g.CheckRoleBinding(ctx, userInfo("erin"), roleBinding("team", "x", "ClusterRole", "admin", userSubject("erin")), nil)
		}, "not currently held"},
		{"binding a missing role", func() error {
			return g.CheckRoleBinding(ctx, userInfo("bob"), roleBinding("team", "x", "Role", "nope", userSubject("bob")), nil)
		}, `roles.rbac.authorization.k8s.io "nope" not found`},
		{"role with secrets by a user without", func() error {
			return g.CheckRole(ctx, userInfo("dave"), secretsRole, nil)
		}, `roles.rbac.authorization.k8s.io "r" is forbidden: user "dave" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch"]}`},
		{"role with secrets by edit", func() error { return g.CheckRole(ctx, userInfo("bob"), secretsRole, nil) }, ""},
		{"escalate verb", func() error { return g.CheckRole(ctx, userInfo("frank"), secretsRole, nil) }, ""},
		{"escalate verb in its namespace only", func() error {
			return g.CheckRole(ctx, userInfo("frank"), role("other", rule(read, in(""), "secrets")), nil)
		}, "not currently held"},
		{"system:masters", func() error {
			return g.CheckClusterRoleBinding(ctx, userInfo("root", user.SystemPrivilegedGroup), clusterRoleBinding("x", "cluster-admin", userSubject("x")), nil)
		}, ""},
		{"update changing owner references only", func() error {
			old := secretsRole.DeepCopy()
			updated := secretsRole.DeepCopy()
			updated.OwnerReferences = []metav1.OwnerReference{{Name: "o"}}
			updated.ResourceVersion = "7"
			return g.CheckRole(ctx, userInfo("dave"), updated, old)
		}, ""},
		// Labels can aggregate a role into admin, edit or view.
		{"update changing labels", func() error {
			old := secretsRole.DeepCopy()
			updated := secretsRole.DeepCopy()
			updated.Labels = map[string]string{"x": "y"}
			return g.CheckRole(ctx, userInfo("dave"), updated, old)
		}, "not currently held"},
		{"clusterrole with rules held", func() error {
			return g.CheckClusterRole(ctx, userInfo("gus"), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "c"},
				Rules: []rbacv1.PolicyRule{rule(read, in(""), "pods")}}, nil)
		}, ""},
		{"aggregationRule needs cluster-admin", func() error {
			return g.CheckClusterRole(ctx, userInfo("gus"), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "c"},
				AggregationRule: aggregation(AggregateToView)}, nil)
		}, "must have cluster-admin privileges to use the aggregationRule"},
		{"removing an aggregationRule too", func() error {
			old := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "c"}, AggregationRule: aggregation(AggregateToView)}
			return g.CheckClusterRole(ctx, userInfo("gus"), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, old)
		}, "must have cluster-admin privileges to use the aggregationRule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("allowed, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(tt.want, "not found") != apierrors.IsNotFound(err) {
				t.Errorf("error %v: not found %v", err, apierrors.IsNotFound(err))
			}
			if err != nil && !strings.Contains(tt.want, "not found") && !apierrors.IsForbidden(err) {
				t.Errorf("error %v is not Forbidden", err)
			}
		})
	}
}
