package rbacaggregation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/testwait"
)

func TestAggregation(t *testing.T) {
	sel := metav1.LabelSelector{MatchLabels: map[string]string{"aggregate-to-view": "true"}}
	view := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view"}, AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{sel}}}
	pods := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "view-pods", Labels: map[string]string{"aggregate-to-view": "true"}},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
	}
	other := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "unrelated"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
	}
	client := fake.NewClientset(view, pods, other)
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), client, factory)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go c.Run(ctx, 1)

	rulesOf := func() []rbacv1.PolicyRule {
		r, err := client.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Rules
	}
	testwait.For(t, "view to gather view-pods' rule", func() (bool, string) {
		r := rulesOf()
		return len(r) == 1 && r[0].Resources[0] == "pods", fmt.Sprint(r)
	})
	// A new labelled role widens view; the unrelated one never does.
	svc := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "view-services", Labels: map[string]string{"aggregate-to-view": "true"}},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"services"}}},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "view to gather view-services' rule too", func() (bool, string) { r := rulesOf(); return len(r) == 2, fmt.Sprint(r) })
	for _, r := range rulesOf() {
		if r.Resources[0] == "*" {
			t.Errorf("view gathered the unrelated role's rule %v", r)
		}
	}
}
