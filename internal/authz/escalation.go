package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// ErrEscalation is wrapped by the errors refusing to grant rights the
// requesting user does not hold.
var ErrEscalation = errors.New("RBAC escalation")

type escalationError struct{ msg string }

func (e *escalationError) Error() string        { return e.msg }
func (e *escalationError) Is(target error) bool { return target == ErrEscalation }

// ConfirmNoEscalation returns an error (errors.Is ErrEscalation) unless u
// holds every one of rules in namespace ("" for cluster-wide), with
// Kubernetes' message listing the rules u lacks.
func (a *RBAC) ConfirmNoEscalation(_ context.Context, u user.Info, rules []rbacv1.PolicyRule, namespace string) error {
	owned, resolveErr := a.PolicyRules(u, namespace)
	ok, missing := validation.Covers(owned, rules)
	if ok {
		return nil
	}
	var desc []string
	for _, r := range compactRules(missing) {
		desc = append(desc, compactString(r))
	}
	slices.Sort(desc)
	desc = slices.Compact(desc)
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s",
		u.GetName(), u.GetGroups(), strings.Join(desc, "\n"))
	if resolveErr != nil {
		// Upstream prints its []error, hence the brackets.
		msg += fmt.Sprintf("; resolution errors: [%v]", resolveErr)
	}
	return &escalationError{msg}
}

// fullAuthority is what setting an aggregationRule takes, since such a
// role can gather any rule.
var fullAuthority = []rbacv1.PolicyRule{
	{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
	{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
}

// Guard applies Kubernetes' escalation rules to writes of roles and
// bindings (what kube-apiserver's policybased storage does): a user may
// create or update a role only with rules it holds itself, or with the
// escalate verb on it; and bind a role only if it holds the role's rules
// where the binding applies, or with the bind verb on it. Members of
// system:masters may do both.
//
// The Check methods take the object as it will be stored (its namespace
// set from the URL) and the stored one on update (nil on create), and
// return a Forbidden *apierrors.StatusError when refused.
type Guard struct {
	rbac  *RBAC
	authz authorizer.Authorizer
}

// NewGuard returns a Guard reading the rules users hold from rbac and
// asking authz (the server's whole chain) for the escalate and bind verbs.
func NewGuard(rbac *RBAC, authz authorizer.Authorizer) *Guard {
	return &Guard{rbac: rbac, authz: authz}
}

// CheckRole guards creating (old nil) or updating a Role.
func (g *Guard) CheckRole(ctx context.Context, u user.Info, role, old *rbacv1.Role) error {
	if g.mayEscalate(ctx, u, "roles", role.Namespace, role.Name, old != nil) {
		return nil
	}
	if old != nil && onlyGCFieldsChanged(role, old) {
		return nil
	}
	if err := g.rbac.ConfirmNoEscalation(ctx, u, role.Rules, role.Namespace); err != nil {
		return apierrors.NewForbidden(rbacv1.Resource("roles"), role.Name, err)
	}
	return nil
}

// CheckClusterRole guards creating (old nil) or updating a ClusterRole.
// Setting, changing or removing an aggregationRule takes cluster-admin
// rights (or escalate), as upstream.
func (g *Guard) CheckClusterRole(ctx context.Context, u user.Info, role, old *rbacv1.ClusterRole) error {
	if g.mayEscalate(ctx, u, "clusterroles", "", role.Name, old != nil) {
		return nil
	}
	if old != nil && onlyGCFieldsChanged(role, old) {
		return nil
	}
	gr := rbacv1.Resource("clusterroles")
	if err := g.rbac.ConfirmNoEscalation(ctx, u, role.Rules, ""); err != nil {
		return apierrors.NewForbidden(gr, role.Name, err)
	}
	if hasAggregationRule(role) || (old != nil && hasAggregationRule(old)) {
		if err := g.rbac.ConfirmNoEscalation(ctx, u, fullAuthority, ""); err != nil {
			return apierrors.NewForbidden(gr, role.Name, errors.New("must have cluster-admin privileges to use the aggregationRule"))
		}
	}
	return nil
}

// CheckRoleBinding guards creating (old nil) or updating a RoleBinding.
// A RoleBinding of a ClusterRole needs the ClusterRole's rules in the
// binding's namespace only.
func (g *Guard) CheckRoleBinding(ctx context.Context, u user.Info, b, old *rbacv1.RoleBinding) error {
	unchanged := old != nil && onlyGCFieldsChanged(b, old)
	return g.checkBinding(ctx, u, rbacv1.Resource("rolebindings"), b.Name, b.Namespace, b.RoleRef, unchanged)
}

// CheckClusterRoleBinding guards creating (old nil) or updating a
// ClusterRoleBinding.
func (g *Guard) CheckClusterRoleBinding(ctx context.Context, u user.Info, b, old *rbacv1.ClusterRoleBinding) error {
	unchanged := old != nil && onlyGCFieldsChanged(b, old)
	return g.checkBinding(ctx, u, rbacv1.Resource("clusterrolebindings"), b.Name, "", b.RoleRef, unchanged)
}

// checkBinding: unchanged is an update changing only what the garbage
// collector changes.
func (g *Guard) checkBinding(ctx context.Context, u user.Info, gr schema.GroupResource, name, namespace string, ref rbacv1.RoleRef, unchanged bool) error {
	if privileged(u) || unchanged {
		return nil
	}
	if g.bindAuthorized(ctx, u, ref, namespace) {
		return nil
	}
	rules, err := g.rbac.roleRules(ref, namespace)
	if err != nil {
		return fmt.Errorf("%s %q: role %s %q: %w", gr.Resource, name, ref.Kind, ref.Name, err)
	}
	if err := g.rbac.ConfirmNoEscalation(ctx, u, rules, namespace); err != nil {
		return apierrors.NewForbidden(gr, name, err)
	}
	return nil
}

// mayEscalate: system:masters, or the escalate verb on the role. As
// upstream takes the name from the URL, a create has none.
func (g *Guard) mayEscalate(ctx context.Context, u user.Info, resource, namespace, name string, update bool) bool {
	if privileged(u) {
		return true
	}
	if !update {
		name = ""
	}
	return g.allowed(ctx, authorizer.AttributesRecord{
		User: u, Verb: "escalate", APIGroup: rbacv1.GroupName, APIVersion: "*",
		Resource: resource, Namespace: namespace, Name: name, ResourceRequest: true,
	})
}

// bindAuthorized: the bind verb on the role, asked in the binding's
// namespace ("" for a ClusterRoleBinding), so bind can be delegated per
// namespace.
func (g *Guard) bindAuthorized(ctx context.Context, u user.Info, ref rbacv1.RoleRef, namespace string) bool {
	a := authorizer.AttributesRecord{
		User: u, Verb: "bind", APIGroup: ref.APIGroup, Namespace: namespace, Name: ref.Name, ResourceRequest: true,
	}
	switch ref.Kind {
	case "ClusterRole":
		a.Resource = "clusterroles"
	case "Role":
		a.Resource = "roles"
	default:
		return false
	}
	return g.allowed(ctx, a)
}

func (g *Guard) allowed(ctx context.Context, a authorizer.AttributesRecord) bool {
	if g.authz == nil {
		return false
	}
	d, _, _ := g.authz.Authorize(ctx, a)
	return d == authorizer.DecisionAllow
}

// privileged: system:masters may grant anything, as upstream's
// EscalationAllowed (which the API server's loopback clients rely on).
func privileged(u user.Info) bool {
	return u != nil && slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup)
}

func hasAggregationRule(r *rbacv1.ClusterRole) bool {
	return r.AggregationRule != nil && len(r.AggregationRule.ClusterRoleSelectors) > 0
}

// onlyGCFieldsChanged reports whether obj differs from old only in what
// the garbage collector changes (owner references, finalizers) or the
// server maintains, as upstream's IsOnlyMutatingGCFields: such updates
// are not checked, so the collector can remove roles it cannot hold.
func onlyGCFieldsChanged(obj, old runtime.Object) bool {
	c := obj.DeepCopyObject()
	cm, err1 := meta.Accessor(c)
	om, err2 := meta.Accessor(old)
	if err1 != nil || err2 != nil {
		return false
	}
	cm.SetOwnerReferences(om.GetOwnerReferences())
	cm.SetFinalizers(om.GetFinalizers())
	cm.SetManagedFields(om.GetManagedFields())
	cm.SetSelfLink(om.GetSelfLink())
	cm.SetResourceVersion(om.GetResourceVersion())
	cm.SetGeneration(om.GetGeneration())
	cm.SetUID(om.GetUID())
	cm.SetCreationTimestamp(om.GetCreationTimestamp())
	c.GetObjectKind().SetGroupVersionKind(old.GetObjectKind().GroupVersionKind())
	return equality.Semantic.DeepEqual(c, old)
}
