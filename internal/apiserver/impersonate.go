package apiserver

import (
	"context"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// impersonate returns the user a request acts as: u itself, or the user
// and groups named in its Impersonate-User and Impersonate-Group headers
// (kubectl --as, --as-group) when u may impersonate each of them, as
// kube-apiserver's impersonation filter decides.
func (s *Server) impersonate(ctx context.Context, u *User, r *http.Request) (*User, error) {
	name := r.Header.Get(authenticationv1.ImpersonateUserHeader)
	groups := r.Header.Values(authenticationv1.ImpersonateGroupHeader)
	if name == "" {
		if len(groups) > 0 {
			return nil, apierrors.NewBadRequest("requested impersonation of groups without impersonating a user")
		}
		return u, nil
	}
	if s.authz != nil {
		who := userInfo(u)
		target := authorizer.AttributesRecord{User: who, Verb: "impersonate", Resource: "users", Name: name, ResourceRequest: true}
		if ns, sa, err := serviceaccount.SplitUsername(name); err == nil {
			target.Resource, target.Namespace, target.Name = "serviceaccounts", ns, sa
		}
		if err := s.check(ctx, target); err != nil {
			return nil, err
		}
		for _, g := range groups {
			if err := s.check(ctx, authorizer.AttributesRecord{User: who, Verb: "impersonate", Resource: "groups", Name: g, ResourceRequest: true}); err != nil {
				return nil, err
			}
		}
	}
	if ns, _, err := serviceaccount.SplitUsername(name); err == nil && len(groups) == 0 {
		groups = serviceaccount.MakeGroupNames(ns)
	}
	// The impersonated user is authenticated; headers of the request
	// that named it are not passed on.
	for _, h := range []string{authenticationv1.ImpersonateUserHeader, authenticationv1.ImpersonateGroupHeader} {
		r.Header.Del(h)
	}
	for k := range r.Header {
		if strings.HasPrefix(k, authenticationv1.ImpersonateUserExtraHeaderPrefix) {
			r.Header.Del(k)
		}
	}
	return &User{Name: name, Groups: groups}, nil
}
