package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRoles(t *testing.T) {
	rule := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}
	tests := []struct {
		name    string
		cluster bool
		rules   []rbacv1.PolicyRule
		agg     *rbacv1.AggregationRule
		objName string
		want    []wantErr
	}{
		{name: "role"},
		{name: "cluster role with non-resource URLs", cluster: true, rules: []rbacv1.PolicyRule{rule, {NonResourceURLs: []string{"/healthz"}, Verbs: []string{"get"}}}},
		{name: "colon in name", objName: "system:controller:web"},
		{name: "aggregated", cluster: true, rules: []rbacv1.PolicyRule{}, agg: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"rbac.example.com/aggregate-to-admin": "true"}},
		}}},
		{name: "slash in name", objName: "a/b", want: []wantErr{invalid("metadata.name")}},
		{name: "no verbs", rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}, want: []wantErr{required("rules[0].verbs")}},
		{name: "no api groups", rules: []rbacv1.PolicyRule{{Resources: []string{"pods"}, Verbs: []string{"get"}}}, want: []wantErr{required("rules[0].apiGroups")}},
		{name: "no resources", rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Verbs: []string{"get"}}}, want: []wantErr{required("rules[0].resources")}},
		{name: "namespaced non-resource URL", rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
			want: []wantErr{invalid("rules[0].nonResourceURLs")}},
		{name: "URLs and resources", cluster: true, rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
			want: []wantErr{invalid("rules[0].nonResourceURLs")}},
		{name: "empty aggregation", cluster: true, agg: &rbacv1.AggregationRule{}, want: []wantErr{required("aggregationRule.clusterRoleSelectors")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := metav1.ObjectMeta{Name: "reader"}
			if tt.objName != "" {
				meta.Name = tt.objName
			}
			rules := tt.rules
			if rules == nil {
				rules = []rbacv1.PolicyRule{rule}
			}
			if tt.cluster {
				checkErrs(t, ClusterRoles().Validate(&rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules, AggregationRule: tt.agg}), tt.want...)
				return
			}
			meta.Namespace = "default"
			checkErrs(t, Roles().Validate(&rbacv1.Role{ObjectMeta: meta, Rules: rules}), tt.want...)
		})
	}
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if diff := cmp.Diff([]any{"reader", "2026-01-02T03:04:05Z"}, Roles().Row(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", CreationTimestamp: created}})); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestRoleBindings(t *testing.T) {
	newBinding := func() *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "read-pods", Namespace: "default"},
			RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{
				{Kind: "User", Name: "jane"}, {Kind: "Group", Name: "devs"}, {Kind: "ServiceAccount", Name: "ci"},
			},
		}
	}
	r := RoleBindings()
	got := newBinding()
	r.Default(got)
	if got.RoleRef.APIGroup != rbacv1.GroupName || got.Subjects[0].APIGroup != rbacv1.GroupName || got.Subjects[1].APIGroup != rbacv1.GroupName || got.Subjects[2].APIGroup != "" {
		t.Errorf("defaulted binding %+v", got)
	}
	tests := []struct {
		name   string
		mutate func(*rbacv1.RoleBinding)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "cluster role", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Kind = "ClusterRole" }},
		{name: "no role name", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "" }, want: []wantErr{required("roleRef.name")}},
		{name: "role kind", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Kind = "Policy" }, want: []wantErr{notSupported("roleRef.kind")}},
		{name: "role group", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.APIGroup = "example.com" }, want: []wantErr{notSupported("roleRef.apiGroup")}},
		{name: "subject kind", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[0].Kind = "Robot" }, want: []wantErr{notSupported("subjects[0].kind")}},
		{name: "subject name", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[1].Name = "" }, want: []wantErr{required("subjects[1].name")}},
		{name: "service account name", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[2].Name = "CI Bot" }, want: []wantErr{invalid("subjects[2].name")}},
		{name: "service account group", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[2].APIGroup = rbacv1.GroupName },
			want: []wantErr{notSupported("subjects[2].apiGroup")}},
		{name: "user group", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[0].APIGroup = "example.com" }, want: []wantErr{notSupported("subjects[0].apiGroup")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinding()
			r.Default(b)
			if tt.mutate != nil {
				tt.mutate(b)
			}
			checkErrs(t, r.Validate(b), tt.want...)
		})
	}
	old := newBinding()
	r.Default(old)
	changed := old.DeepCopy()
	changed.RoleRef.Name = "admin"
	checkErrs(t, r.ValidateUpdate(changed, old), invalid("roleRef"))
	more := old.DeepCopy()
	more.Subjects = append(more.Subjects, rbacv1.Subject{Kind: "User", Name: "joe", APIGroup: rbacv1.GroupName})
	checkErrs(t, r.ValidateUpdate(more, old))

	old.CreationTimestamp = ago(2 * time.Hour)
	old.Subjects[2].Namespace = "default"
	want := []any{"read-pods", "Role/reader", "120m", "jane", "devs", "default/ci"}
	if diff := cmp.Diff(want, bindingRow(old.Name, old.RoleRef, old.Subjects, old.CreationTimestamp, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestClusterRoleBindings(t *testing.T) {
	r := ClusterRoleBindings()
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-admin"},
		RoleRef:    rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ci", Namespace: "ci"}},
	}
	r.Default(b)
	checkErrs(t, r.Validate(b))
	noNS := b.DeepCopy()
	noNS.Subjects[0].Namespace = ""
	checkErrs(t, r.Validate(noNS), required("subjects[0].namespace"))
	role := b.DeepCopy()
	role.RoleRef.Kind = "Role"
	checkErrs(t, r.Validate(role), notSupported("roleRef.kind"))
	checkErrs(t, r.ValidateUpdate(role, b), invalid("roleRef"))
}
