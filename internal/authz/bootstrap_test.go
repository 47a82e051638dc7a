package authz

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/default-policy.yaml")

// TestDefaultPolicyGolden keeps the default policy in a file reviewers can
// diff against upstream's bootstrappolicy/testdata/cluster-roles.yaml.
func TestDefaultPolicyGolden(t *testing.T) {
	var doc struct {
		ClusterRoles        []*rbacv1.ClusterRole        `json:"clusterRoles"`
		ClusterRoleBindings []*rbacv1.ClusterRoleBinding `json:"clusterRoleBindings"`
	}
	doc.ClusterRoles, doc.ClusterRoleBindings = DefaultClusterRoles(), DefaultClusterRoleBindings()
	got, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "default-policy.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("default policy changed (-file +now); run go test -run Golden -update if intended:\n%s", diff)
	}
}

func TestDefaultPolicy(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	for _, r := range DefaultClusterRoles() {
		if r.Labels[BootstrapLabel] != BootstrapLabelValue || r.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
			t.Errorf("role %s: labels %v annotations %v", r.Name, r.Labels, r.Annotations)
		}
		if roles[r.Name] != nil {
			t.Errorf("role %s twice", r.Name)
		}
		roles[r.Name] = r
	}
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
		"system:public-info-viewer", "system:node", "system:kube-scheduler", "system:kube-controller-manager", "system:auth-delegator"} {
		if roles[name] == nil {
			t.Errorf("no role %s", name)
		}
	}
	for _, b := range DefaultClusterRoleBindings() {
		if b.Labels[BootstrapLabel] != BootstrapLabelValue || b.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
			t.Errorf("binding %s: labels %v annotations %v", b.Name, b.Labels, b.Annotations)
		}
		if roles[b.RoleRef.Name] == nil {
			t.Errorf("binding %s of missing role %s", b.Name, b.RoleRef.Name)
		}
	}
	// Aggregated as upstream's controller does: edit gathers view.
	view, edit, admin := roles["view"], roles["edit"], roles["admin"]
	if len(view.Rules) == 0 || len(edit.Rules) <= len(view.Rules) || len(admin.Rules) <= len(edit.Rules) {
		t.Errorf("rules: view %d, edit %d, admin %d", len(view.Rules), len(edit.Rules), len(admin.Rules))
	}
	// view is aggregate-to-view's rules and metrics-server's reader's.
	wantView := append(slices.Clone(roles["system:aggregate-to-view"].Rules), roles["system:aggregated-metrics-reader"].Rules...)
	if diff := cmp.Diff(wantView, view.Rules); diff != "" {
		t.Errorf("view (-aggregate-to-view +view):\n%s", diff)
	}
}

func TestAggregate(t *testing.T) {
	labeled := func(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: rules}
	}
	pods := rule(read, in(""), "pods")
	secrets := rule(read, in(""), "secrets")
	nodes := rule(read, in(""), "nodes")
	target := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "target", Labels: map[string]string{"a": "true"}},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"a": "true"}},
			{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "b", Operator: metav1.LabelSelectorOpExists}}},
		}},
		Rules: []rbacv1.PolicyRule{nodes}, // replaced
	}
	all := []*rbacv1.ClusterRole{
		labeled("z", map[string]string{"a": "true"}, secrets, pods),
		labeled("m", map[string]string{"b": "x"}, pods),
		labeled("a", map[string]string{"a": "true", "b": "y"}, pods),
		labeled("other", map[string]string{"a": "false"}, nodes),
		target,
	}
	// Name order (a, m, z), each rule once, the target itself left out.
	want := []rbacv1.PolicyRule{pods, secrets}
	if diff := cmp.Diff(want, Aggregate(target, all)); diff != "" {
		t.Errorf("Aggregate (-want +got):\n%s", diff)
	}
	if got := Aggregate(labeled("plain", nil, nodes), all); len(got) != 1 {
		t.Errorf("role without aggregationRule: %v", got)
	}

	// A role labeled for view reaches edit and admin too.
	roles := DefaultClusterRoles()
	custom := rule(read, in("example.com"), "widgets")
	roles = append(roles, labeled("widgets-view", map[string]string{AggregateToView: "true"}, custom))
	if !AggregateAll(roles) {
		t.Fatal("AggregateAll changed nothing")
	}
	for _, r := range roles {
		switch r.Name {
		case "admin", "edit", "view":
			if !RulesAllow(res("list", "example.com", "widgets", "", "ns", ""), r.Rules...) {
				t.Errorf("%s does not gather widgets", r.Name)
			}
		}
	}
	if AggregateAll(roles) {
		t.Error("AggregateAll not settled")
	}
}
