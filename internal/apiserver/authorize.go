package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"wharf.dev/wharf/internal/authz"
	"wharf.dev/wharf/internal/storage"
)

// Every request to the API is authorized as kube-apiserver does it:
// members of system:masters may do anything, then the Node authorizer
// decides for the nodes' agents, then RBAC over the Roles and bindings in
// storage. The extra Routes (the image registry, the agents' join) check
// their callers themselves.

// authorization is the server's authorizer chain and what feeds it.
type authorization struct {
	rbac  *authz.RBAC
	node  *authz.Node
	chain authorizer.Authorizer
	guard *authz.Guard
}

func (s *Server) newAuthorization(nodeOpts ...authz.NodeOption) *authorization {
	a := &authorization{rbac: authz.NewRBAC(storePolicy{s}), node: authz.NewNode(storeNodeGraph{s}, nodeOpts...)}
	a.chain = authz.Chain(authz.PrivilegedGroups(user.SystemPrivilegedGroup), a.node, a.rbac)
	a.guard = authz.NewGuard(a.rbac, a.chain)
	return a
}

// userInfo is u as the authorizers see it: every authenticated user is in
// system:authenticated.
func userInfo(u *User) user.Info {
	groups := u.Groups
	found := false
	for _, g := range groups {
		found = found || g == user.AllAuthenticated
	}
	if !found {
		groups = append(groups[:len(groups):len(groups)], user.AllAuthenticated)
	}
	return &user.DefaultInfo{Name: u.Name, Groups: groups, Extra: u.Extra}
}

// authorize answers whether u may make request r; a refusal is the 403
// kube-apiserver gives.
func (s *Server) authorize(ctx context.Context, u user.Info, r *http.Request) error {
	if s.authz == nil {
		return nil
	}
	attrs, err := authz.RequestAttributes(u, r)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return s.check(ctx, attrs)
}

func (s *Server) check(ctx context.Context, attrs authorizer.Attributes) error {
	d, reason, err := s.authz.chain.Authorize(ctx, attrs)
	if d == authorizer.DecisionAllow {
		return nil
	}
	if err != nil && reason == "" {
		reason = err.Error()
	}
	return forbidden(attrs, reason)
}

// forbidden is upstream's message: `pods is forbidden: User "x" cannot list
// resource "pods" in API group "" in the namespace "default"`.
func forbidden(attrs authorizer.Attributes, reason string) error {
	name := attrs.GetUser().GetName()
	var msg string
	if !attrs.IsResourceRequest() {
		msg = fmt.Sprintf("forbidden: User %q cannot %s path %q", name, attrs.GetVerb(), attrs.GetPath())
	} else {
		res := attrs.GetResource()
		if sub := attrs.GetSubresource(); sub != "" {
			res += "/" + sub
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q", name, attrs.GetVerb(), res, attrs.GetAPIGroup())
		if ns := attrs.GetNamespace(); ns != "" {
			msg += fmt.Sprintf(" in the namespace %q", ns)
		} else {
			msg += " at the cluster scope"
		}
	}
	if reason != "" {
		msg += ": " + reason
	}
	gr := schema.GroupResource{Group: attrs.GetAPIGroup(), Resource: attrs.GetResource()}
	if !attrs.IsResourceRequest() {
		return apierrors.NewForbidden(gr, "", fmt.Errorf("%s", strings.TrimPrefix(msg, "forbidden: ")))
	}
	return apierrors.NewForbidden(gr, attrs.GetName(), fmt.Errorf("%s", msg))
}

// guardRBAC applies the escalation rules to a write of a Role, ClusterRole
// or binding (old is nil on create).
func (s *Server) guardRBAC(ctx context.Context, req *request, obj, old runtime.Object) error {
	if s.authz == nil || req.gvr.Group != rbacv1.GroupName {
		return nil
	}
	u, ok := UserFrom(ctx)
	if !ok {
		return nil
	}
	info := userInfo(u)
	g := s.authz.guard
	switch o := obj.(type) {
	case *rbacv1.Role:
		oldRole, _ := old.(*rbacv1.Role)
		return g.CheckRole(ctx, info, o, oldRole)
	case *rbacv1.ClusterRole:
		oldRole, _ := old.(*rbacv1.ClusterRole)
		return g.CheckClusterRole(ctx, info, o, oldRole)
	case *rbacv1.RoleBinding:
		oldBinding, _ := old.(*rbacv1.RoleBinding)
		return g.CheckRoleBinding(ctx, info, o, oldBinding)
	case *rbacv1.ClusterRoleBinding:
		oldBinding, _ := old.(*rbacv1.ClusterRoleBinding)
		return g.CheckClusterRoleBinding(ctx, info, o, oldBinding)
	}
	return nil
}

// storePolicy reads the RBAC objects from the storage cache.
type storePolicy struct{ s *Server }

const rbacPrefix = "/registry/" + rbacv1.GroupName + "/"

func (p storePolicy) get(ctx context.Context, key string) (runtime.Object, error) {
	return p.s.store.Get(ctx, rbacPrefix+key, "0")
}

func (p storePolicy) list(key string) ([]runtime.Object, error) {
	page, err := p.s.store.List(context.Background(), rbacPrefix+key, storage.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, err
	}
	return page.Items, nil
}

func (p storePolicy) GetRole(namespace, name string) (*rbacv1.Role, error) {
	obj, err := p.get(context.Background(), "roles/"+namespace+"/"+name)
	if err != nil {
		return nil, err
	}
	return obj.(*rbacv1.Role), nil
}

func (p storePolicy) GetClusterRole(name string) (*rbacv1.ClusterRole, error) {
	obj, err := p.get(context.Background(), "clusterroles/"+name)
	if err != nil {
		return nil, err
	}
	return obj.(*rbacv1.ClusterRole), nil
}

func (p storePolicy) ListRoleBindings(namespace string) ([]*rbacv1.RoleBinding, error) {
	return listOf[*rbacv1.RoleBinding](p.list("rolebindings/" + namespace + "/"))
}

func (p storePolicy) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	return listOf[*rbacv1.ClusterRoleBinding](p.list("clusterrolebindings/"))
}

func listOf[T runtime.Object](items []runtime.Object, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, o := range items {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// storeNodeGraph finds a node's pods in the storage cache.
type storeNodeGraph struct{ s *Server }

func (g storeNodeGraph) PodsOnNode(node string) ([]*corev1.Pod, error) {
	page, err := g.s.store.List(context.Background(), "/registry/core/pods/", storage.ListOptions{
		ResourceVersion: "0",
		Predicate: func(o runtime.Object) bool {
			p, ok := o.(*corev1.Pod)
			return ok && p.Spec.NodeName == node
		},
	})
	if err != nil {
		return nil, err
	}
	return listOf[*corev1.Pod](page.Items, nil)
}

// VolumeOfClaim implements authz.VolumeGraph.
func (g storeNodeGraph) VolumeOfClaim(namespace, name string) (string, error) {
	obj, err := g.s.store.Get(context.Background(), "/registry/core/persistentvolumeclaims/"+namespace+"/"+name, "0")
	if err != nil {
		return "", err
	}
	if c, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		return c.Spec.VolumeName, nil
	}
	return "", nil
}

// watchPolicy tells RBAC to forget what it knows whenever a Role,
// ClusterRole or binding changes, until ctx ends.
func (s *Server) watchPolicy(ctx context.Context) {
	if s.authz == nil {
		return
	}
	for _, res := range []string{"roles", "clusterroles", "rolebindings", "clusterrolebindings"} {
		go s.follow(ctx, rbacPrefix+res+"/", func() { s.authz.rbac.Invalidate() })
	}
}

// follow calls changed once the watch of prefix started and after every
// change under it, until ctx ends; a broken watch is started again.
func (s *Server) follow(ctx context.Context, prefix string, changed func()) {
	fromNow := false
	for ctx.Err() == nil {
		w, err := s.store.Watch(ctx, prefix, storage.WatchOptions{SendInitialEvents: &fromNow})
		if err != nil {
			s.log.Warn("watch for the authorizer", "prefix", prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		changed() // whatever happened while no watch ran
		for range w.ResultChan() {
			changed()
		}
		w.Stop()
	}
}
