package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"wharf.dev/wharf/internal/authz"
)

// defaults is a Policy serving the default policy only; the API server's
// reads its watch cache.
type defaults struct{}

func (defaults) GetRole(ns, name string) (*rbacv1.Role, error) {
	return nil, fmt.Errorf("role %s/%s not found", ns, name)
}

func (defaults) GetClusterRole(name string) (*rbacv1.ClusterRole, error) {
	for _, r := range authz.DefaultClusterRoles() {
		if r.Name == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("clusterrole %s not found", name)
}

func (defaults) ListRoleBindings(string) ([]*rbacv1.RoleBinding, error) { return nil, nil }

func (defaults) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	return authz.DefaultClusterRoleBindings(), nil
}

type noPods struct{}

func (noPods) PodsOnNode(string) ([]*corev1.Pod, error) { return nil, nil }

// The API server authorizes after authenticating: it parses the request,
// asks the chain, and answers 403 unless allowed.
func Example() {
	rbac := authz.NewRBAC(defaults{})
	chain := authz.Chain(authz.PrivilegedGroups(user.SystemPrivilegedGroup), authz.NewNode(noPods{}), rbac)

	withAuthz := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := r.Context().Value(userKey{}).(user.Info) // set by authentication
			attrs, err := authz.RequestAttributes(u, r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if d, reason, _ := chain.Authorize(r.Context(), attrs); d != authorizer.DecisionAllow {
				http.Error(w, fmt.Sprintf("forbidden: %s", reason), http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	h := withAuthz(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	for _, path := range []string{"/healthz", "/api/v1/namespaces/default/secrets"} {
		r := httptest.NewRequest("GET", path, nil)
		u := &user.DefaultInfo{Name: "bob", Groups: []string{user.AllAuthenticated}}
		r = r.WithContext(context.WithValue(r.Context(), userKey{}, user.Info(u)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(path, w.Code)
	}
	// Output:
	// /healthz 200
	// /api/v1/namespaces/default/secrets 403
}

type userKey struct{}
