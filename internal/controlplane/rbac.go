package controlplane

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/authz"
	"wharf.dev/wharf/internal/wire"
)

// autoupdate is the annotation of a default role or binding the server may
// bring back to its default at start; an operator sets it "false" to keep
// an edited one.
const autoupdate = "rbac.authorization.kubernetes.io/autoupdate"

// nodeAccess is what Wharf's agents read beyond their pods' objects: the
// heartbeat key, and the TLS secrets of Ingresses (every node serves them).
func nodeAccess() []authz.NodeOption {
	return []authz.NodeOption{
		authz.WithNodeReadable("secrets", wire.HeartbeatKeyNamespace, wire.HeartbeatKeySecret),
		authz.WithNodeTLSSecretList(),
	}
}

// bootstrapRBAC creates the default ClusterRoles and ClusterRoleBindings
// (cluster-admin, admin, edit, view, system:*), and brings back to default
// those that exist with the autoupdate annotation "true", as
// kube-apiserver does at start.
func bootstrapRBAC(ctx context.Context, client kubernetes.Interface) error {
	roles := client.RbacV1().ClusterRoles()
	for _, want := range authz.DefaultClusterRoles() {
		have, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = roles.Create(ctx, want, metav1.CreateOptions{})
		} else if err == nil && have.Annotations[autoupdate] == "true" {
			next := have.DeepCopy()
			next.Labels = mergeLabels(have.Labels, want.Labels)
			next.AggregationRule = want.AggregationRule
			if want.AggregationRule == nil {
				next.Rules = want.Rules // aggregated rules are the controller's
			}
			if !equality.Semantic.DeepEqual(next, have) {
				_, err = roles.Update(ctx, next, metav1.UpdateOptions{})
			}
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap clusterrole %s: %w", want.Name, err)
		}
	}
	bindings := client.RbacV1().ClusterRoleBindings()
	for _, want := range authz.DefaultClusterRoleBindings() {
		have, err := bindings.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = bindings.Create(ctx, want, metav1.CreateOptions{})
		} else if err == nil && have.Annotations[autoupdate] == "true" && !equality.Semantic.DeepEqual(have.Subjects, want.Subjects) {
			next := have.DeepCopy()
			next.Subjects = want.Subjects
			_, err = bindings.Update(ctx, next, metav1.UpdateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap clusterrolebinding %s: %w", want.Name, err)
		}
	}
	return nil
}

func mergeLabels(have, want map[string]string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}
