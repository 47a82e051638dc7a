package authz

import (
	"context"
	"fmt"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func resourceAttrs(u user.Info, verb, group, resource, sub, ns, name string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		User: u, Verb: verb, APIGroup: group, APIVersion: "v1", Resource: resource, Subresource: sub,
		Namespace: ns, Name: name, ResourceRequest: true,
	}
}

func pathAttrs(u user.Info, verb, path string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, Verb: verb, Path: path}
}

func TestRuleAllows(t *testing.T) {
	u := userInfo("u")
	tests := []struct {
		name  string
		rule  rbacv1.PolicyRule
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{"exact", rule(v("get"), in(""), "pods"), resourceAttrs(u, "get", "", "pods", "", "ns", "p"), true},
		{"other verb", rule(v("get"), in(""), "pods"), resourceAttrs(u, "list", "", "pods", "", "ns", ""), false},
		{"other group", rule(v("get"), in("apps"), "pods"), resourceAttrs(u, "get", "", "pods", "", "ns", "p"), false},
		{"wildcards", rule(v("*"), in("*"), "*"), resourceAttrs(u, "escalate", "rbac.authorization.k8s.io", "roles", "", "", "r"), true},
		{"resource does not cover its subresources", rule(v("get"), in(""), "pods"), resourceAttrs(u, "get", "", "pods", "log", "ns", "p"), false},
		{"resource/subresource", rule(v("get"), in(""), "pods/log"), resourceAttrs(u, "get", "", "pods", "log", "ns", "p"), true},
		{"resource/subresource is not the resource", rule(v("get"), in(""), "pods/log"), resourceAttrs(u, "get", "", "pods", "", "ns", "p"), false},
		{"*/subresource", rule(v("update"), in("*"), "*/scale"), resourceAttrs(u, "update", "apps", "deployments", "scale", "ns", "d"), true},
		{"*/subresource other subresource", rule(v("update"), in("*"), "*/scale"), resourceAttrs(u, "update", "apps", "deployments", "status", "ns", "d"), false},
		{"* covers subresources", rule(v("get"), in(""), "*"), resourceAttrs(u, "get", "", "pods", "exec", "ns", "p"), true},
		{"resourceNames match", named(rule(v("get"), in(""), "secrets"), "s1"), resourceAttrs(u, "get", "", "secrets", "", "ns", "s1"), true},
		{"resourceNames other", named(rule(v("get"), in(""), "secrets"), "s1"), resourceAttrs(u, "get", "", "secrets", "", "ns", "s2"), false},
		// A list has no name, so a rule with names never allows it (unless
		// a metadata.name field selector names the object).
		{"resourceNames list", named(rule(v("list"), in(""), "secrets"), "s1"), resourceAttrs(u, "list", "", "secrets", "", "ns", ""), false},
		{"url exact", urls(v("get"), "/healthz"), pathAttrs(u, "get", "/healthz"), true},
		{"url exact is not a prefix", urls(v("get"), "/healthz"), pathAttrs(u, "get", "/healthz/etcd"), false},
		{"url prefix", urls(v("get"), "/healthz/*"), pathAttrs(u, "get", "/healthz/etcd"), true},
		{"url prefix needs the slash", urls(v("get"), "/healthz/*"), pathAttrs(u, "get", "/healthz"), false},
		{"url *", urls(v("*"), "*"), pathAttrs(u, "post", "/anything"), true},
		{"url rule on resource", urls(v("*"), "*"), resourceAttrs(u, "get", "", "pods", "", "ns", ""), false},
		{"resource rule on url", rule(v("*"), in("*"), "*"), pathAttrs(u, "get", "/healthz"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleAllows(tt.attrs, &tt.rule); got != tt.want {
				t.Errorf("RuleAllows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRBACSubjects(t *testing.T) {
	p := newMemPolicy()
	p.addClusterRole(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"}, Rules: []rbacv1.PolicyRule{rule(read, in(""), "pods")}})
	p.addRole(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "cm-reader"}, Rules: []rbacv1.PolicyRule{rule(read, in(""), "configmaps")}})
	p.addRoleBinding(roleBinding("a", "sa-local", "ClusterRole", "pod-reader", saSubject("", "builder")))
	p.addRoleBinding(roleBinding("a", "sa-other", "ClusterRole", "pod-reader", saSubject("b", "deployer")))
	p.addRoleBinding(roleBinding("a", "role", "Role", "cm-reader", userSubject("carol")))
	p.addRoleBinding(roleBinding("a", "all-sas", "ClusterRole", "pod-reader", groupSubject("system:serviceaccounts:c")))
	// A ServiceAccount subject of a ClusterRoleBinding must name its
	// namespace: this one matches no one.
	p.addClusterRoleBinding(clusterRoleBinding("sa-nons", "pod-reader", saSubject("", "builder")))
	a := NewRBAC(p)

	sa := func(ns, name string) user.Info {
		return serviceaccount.UserInfo(ns, name, "uid")
	}
	tests := []struct {
		name string
		u    user.Info
		ns   string
		res  string
		want authorizer.Decision
	}{
		{"service account defaults to the binding's namespace", sa("a", "builder"), "a", "pods", authorizer.DecisionAllow},
		{"same name in another namespace", sa("b", "builder"), "a", "pods", authorizer.DecisionNoOpinion},
		{"service account of another namespace, named", sa("b", "deployer"), "a", "pods", authorizer.DecisionAllow},
		{"a RoleBinding grants in its namespace only", sa("a", "builder"), "b", "pods", authorizer.DecisionNoOpinion},
		{"a RoleBinding grants nothing cluster-wide", sa("a", "builder"), "", "pods", authorizer.DecisionNoOpinion},
		{"Role", userInfo("carol"), "a", "configmaps", authorizer.DecisionAllow},
		{"Role's rules only", userInfo("carol"), "a", "pods", authorizer.DecisionNoOpinion},
		{"group of a namespace's service accounts", sa("c", "anyone"), "a", "pods", authorizer.DecisionAllow},
		{"user named like a service account", userInfo("system:serviceaccount:a:builder"), "a", "pods", authorizer.DecisionAllow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := a.Authorize(context.Background(), resourceAttrs(tt.u, "get", "", tt.res, "", tt.ns, "x"))
			if err != nil || got != tt.want {
				t.Errorf("Authorize = %v %q %v, want %v", got, reason, err, tt.want)
			}
		})
	}
}

func TestRBACReasons(t *testing.T) {
	p := newMemPolicy().withDefaults()
	p.addRoleBinding(roleBinding("team", "bob-edit", "ClusterRole", "edit", userSubject("bob")))
	p.addRoleBinding(roleBinding("team", "ci", "ClusterRole", "view", saSubject("", "ci")))
	p.addClusterRoleBinding(clusterRoleBinding("ghost", "ghost", userSubject("gina")))
	a := NewRBAC(p)
	tests := []struct {
		name   string
		attrs  authorizer.AttributesRecord
		want   authorizer.Decision
		reason string
	}{
		{"cluster role binding", resourceAttrs(userInfo("root", user.SystemPrivilegedGroup), "delete", "", "nodes", "", "", "n1"),
			authorizer.DecisionAllow, `RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"`},
		{"role binding", resourceAttrs(userInfo("bob"), "create", "", "pods", "", "team", ""),
			authorizer.DecisionAllow, `RBAC: allowed by RoleBinding "bob-edit/team" of ClusterRole "edit" to User "bob"`},
		{"service account", resourceAttrs(serviceaccount.UserInfo("team", "ci", ""), "list", "", "pods", "", "team", ""),
			authorizer.DecisionAllow, `RBAC: allowed by RoleBinding "ci/team" of ClusterRole "view" to ServiceAccount "ci/team"`},
		{"non-resource", pathAttrs(userInfo("bob"), "get", "/version"),
			authorizer.DecisionAllow, `RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"`},
		{"no rule", resourceAttrs(userInfo("bob"), "create", "", "pods", "", "other", ""), authorizer.DecisionNoOpinion, ""},
		{"missing role", resourceAttrs(userInfo("gina"), "get", "", "pods", "", "team", "p"),
			authorizer.DecisionNoOpinion, `RBAC: clusterroles.rbac.authorization.k8s.io "ghost" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := a.Authorize(context.Background(), tt.attrs)
			if err != nil || got != tt.want || reason != tt.reason {
				t.Errorf("Authorize = %v, %q, %v; want %v, %q", got, reason, err, tt.want, tt.reason)
			}
		})
	}
}

func TestRBACInvalidate(t *testing.T) {
	p := newMemPolicy()
	p.addClusterRole(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Rules: []rbacv1.PolicyRule{rule(read, in(""), "pods")}})
	a := NewRBAC(p)
	attrs := resourceAttrs(userInfo("u"), "get", "", "pods", "", "ns", "p")
	decide := func() authorizer.Decision {
		d, _, _ := a.Authorize(context.Background(), attrs)
		return d
	}
	if d := decide(); d != authorizer.DecisionNoOpinion {
		t.Fatalf("before binding: %v", d)
	}
	p.addClusterRoleBinding(clusterRoleBinding("b", "r", userSubject("u")))
	if d := decide(); d != authorizer.DecisionNoOpinion {
		t.Fatalf("binding seen before Invalidate: %v", d)
	}
	a.Invalidate()
	if d := decide(); d != authorizer.DecisionAllow {
		t.Fatalf("after Invalidate: %v", d)
	}
	// The role's rules are kept with the binding: a changed role needs
	// Invalidate too.
	p.addClusterRole(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "r"}})
	a.Invalidate()
	if d := decide(); d != authorizer.DecisionNoOpinion {
		t.Fatalf("after emptying the role: %v", d)
	}
	lists := p.lists
	for range 10 {
		decide()
	}
	if p.lists != lists {
		t.Errorf("%d listings for 10 requests without changes, want 0", p.lists-lists)
	}
}

func TestRulesFor(t *testing.T) {
	p := newMemPolicy().withDefaults()
	p.addRoleBinding(roleBinding("team", "carol-view", "ClusterRole", "view", userSubject("carol")))
	p.addRoleBinding(roleBinding("team", "broken", "Role", "missing", userSubject("carol")))
	a := NewRBAC(p)
	node := NewNode(podGraph{})
	ctx := context.Background()

	st := SubjectRulesReview(ctx, userInfo("carol"), "team", node, a)
	if st.Incomplete {
		t.Error("RBAC's rules marked incomplete")
	}
	if !strings.Contains(st.EvaluationError, `roles.rbac.authorization.k8s.io "missing" not found`) {
		t.Errorf("EvaluationError = %q, want the missing role", st.EvaluationError)
	}
	has := func(verb, resource string) bool {
		for _, r := range st.ResourceRules {
			if strings.Contains(strings.Join(r.Verbs, ","), verb) && strings.Contains(strings.Join(r.Resources, ","), resource) {
				return true
			}
		}
		return false
	}
	if !has("list", "pods") || has("get", "secrets") {
		t.Errorf("carol's rules in team: %v", st.ResourceRules)
	}
	if len(st.NonResourceRules) == 0 {
		t.Error("no non-resource rules (system:discovery)")
	}
	st = SubjectRulesReview(ctx, userInfo("carol"), "other", node, a)
	if has("list", "pods") {
		t.Error("carol's view in team listed in namespace other")
	}

	st = SubjectRulesReview(ctx, userInfo("system:node:n1", user.NodesGroup), "team", node, a)
	if !st.Incomplete || st.EvaluationError == "" {
		t.Errorf("node's rules: incomplete %v, error %q; want incomplete with an error", st.Incomplete, st.EvaluationError)
	}
}

// TestRBACConcurrentInvalidate runs decisions while the policy changes
// (for -race).
func TestRBACConcurrentInvalidate(t *testing.T) {
	p := newMemPolicy().withDefaults()
	a := NewRBAC(p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			p.addRoleBinding(roleBinding("team", fmt.Sprintf("b%d", i), "ClusterRole", "view", userSubject(fmt.Sprintf("u%d", i))))
			a.Invalidate()
		}
	}()
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-done:
			a.Invalidate()
			if d, _, _ := a.Authorize(ctx, resourceAttrs(userInfo("u199"), "get", "", "pods", "", "team", "p")); d != authorizer.DecisionAllow {
				t.Fatalf("last binding not seen after Invalidate: %v", d)
			}
			return
		default:
			a.Authorize(ctx, resourceAttrs(userInfo(fmt.Sprintf("u%d", i%200)), "get", "", "pods", "", "team", "p"))
		}
	}
}
