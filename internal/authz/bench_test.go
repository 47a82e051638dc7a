package authz

import (
	"context"
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// benchPolicy: the default policy and 1,000 roles (500 ClusterRoles, 500
// Roles in 50 namespaces) with 1,000 bindings (500 ClusterRoleBindings to
// groups, 500 RoleBindings to users).
func benchPolicy() *memPolicy {
	p := newMemPolicy().withDefaults()
	for i := range 500 {
		ns := fmt.Sprintf("ns-%d", i%50)
		p.addClusterRole(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cr-%d", i)},
			Rules: []rbacv1.PolicyRule{rule(read, in("example.com"), fmt.Sprintf("widgets-%d", i))}})
		p.addClusterRoleBinding(clusterRoleBinding(fmt.Sprintf("crb-%d", i), fmt.Sprintf("cr-%d", i), groupSubject(fmt.Sprintf("group-%d", i))))
		p.addRole(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("r-%d", i)},
			Rules: []rbacv1.PolicyRule{rule(v("create", "get"), in(""), "pods", "configmaps")}})
		p.addRoleBinding(roleBinding(ns, fmt.Sprintf("rb-%d", i), "Role", fmt.Sprintf("r-%d", i), userSubject(fmt.Sprintf("user-%d", i))))
	}
	return p
}

// BenchmarkAuthorize times one decision of an API create, the check the
// API server adds to every request.
func BenchmarkAuthorize(b *testing.B) {
	p := benchPolicy()
	rbac := NewRBAC(p)
	chain := Chain(PrivilegedGroups(user.SystemPrivilegedGroup), NewNode(podGraph{pod("ns-1", "p", "n1", withSecretVolume("s"))}), rbac)
	ctx := context.Background()
	create := func(u user.Info, ns string) authorizer.AttributesRecord {
		a := res("create", "", "pods", "", ns, "")
		a.User = u
		return a
	}
	secret := res("get", "", "secrets", "", "ns-1", "s")
	secret.User = userInfo("system:node:n1", user.NodesGroup)
	cases := []struct {
		name  string
		authz authorizer.Authorizer
		attrs authorizer.AttributesRecord
		want  authorizer.Decision
	}{
		{"rolebinding-allow", rbac, create(userInfo("user-42", "group-7"), "ns-42"), authorizer.DecisionAllow},
		{"no-rule", rbac, create(userInfo("user-42", "group-7"), "ns-43"), authorizer.DecisionNoOpinion},
		{"cluster-admin-rbac", rbac, create(userInfo("root", user.SystemPrivilegedGroup), "ns-1"), authorizer.DecisionAllow},
		{"chain-system-masters", chain, create(userInfo("root", user.SystemPrivilegedGroup), "ns-1"), authorizer.DecisionAllow},
		{"chain-rolebinding-allow", chain, create(userInfo("user-42", "group-7"), "ns-42"), authorizer.DecisionAllow},
		{"chain-node-secret", chain, secret, authorizer.DecisionAllow},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if d, reason, _ := c.authz.Authorize(ctx, c.attrs); d != c.want {
				b.Fatalf("decision %v (%s), want %v", d, reason, c.want)
			}
			attrs := authorizer.Attributes(&c.attrs) // as the server passes it, boxed once
			b.ReportAllocs()
			for b.Loop() {
				c.authz.Authorize(ctx, attrs)
			}
		})
	}
	// The first request after a change re-reads the bindings: the cost of
	// a write to RBAC objects.
	b.Run("after-invalidate", func(b *testing.B) {
		attrs := create(userInfo("user-42", "group-7"), "ns-42")
		b.ReportAllocs()
		for b.Loop() {
			rbac.Invalidate()
			rbac.Authorize(ctx, attrs)
		}
	})
}
