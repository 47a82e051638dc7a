package authz

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func TestRequestAttributes(t *testing.T) {
	type attrs struct {
		Verb, Namespace, APIGroup, APIVersion, Resource, Subresource, Name, Path string
		ResourceRequest                                                          bool
		FieldSelector                                                            string
	}
	res := func(verb, group, version, resource, sub, ns, name, path string) attrs {
		return attrs{Verb: verb, APIGroup: group, APIVersion: version, Resource: resource, Subresource: sub,
			Namespace: ns, Name: name, Path: path, ResourceRequest: true}
	}
	nonRes := func(verb, path string) attrs { return attrs{Verb: verb, Path: path} }
	tests := []struct {
		method, url string
		want        attrs
	}{
		{"GET", "/api/v1/namespaces/team/pods", res("list", "", "v1", "pods", "", "team", "", "/api/v1/namespaces/team/pods")},
		{"GET", "/api/v1/namespaces/team/pods?watch=true", res("watch", "", "v1", "pods", "", "team", "", "/api/v1/namespaces/team/pods")},
		{"GET", "/api/v1/namespaces/team/pods?watch=1&resourceVersion=5", res("watch", "", "v1", "pods", "", "team", "", "/api/v1/namespaces/team/pods")},
		{"GET", "/api/v1/namespaces/team/pods?watch=false", res("list", "", "v1", "pods", "", "team", "", "/api/v1/namespaces/team/pods")},
		{"GET", "/api/v1/watch/namespaces/team/pods", res("watch", "", "v1", "pods", "", "team", "", "/api/v1/watch/namespaces/team/pods")},
		{"HEAD", "/api/v1/namespaces/team/pods/p1", res("get", "", "v1", "pods", "", "team", "p1", "/api/v1/namespaces/team/pods/p1")},
		{"GET", "/api/v1/namespaces/team/pods/p1", res("get", "", "v1", "pods", "", "team", "p1", "/api/v1/namespaces/team/pods/p1")},
		{"GET", "/api/v1/namespaces/team/pods/p1/log?follow=true", res("get", "", "v1", "pods", "log", "team", "p1", "/api/v1/namespaces/team/pods/p1/log")},
		{"POST", "/api/v1/namespaces/team/pods/p1/exec?command=sh", res("create", "", "v1", "pods", "exec", "team", "p1", "/api/v1/namespaces/team/pods/p1/exec")},
		{"POST", "/api/v1/namespaces/team/pods", res("create", "", "v1", "pods", "", "team", "", "/api/v1/namespaces/team/pods")},
		{"PUT", "/api/v1/namespaces/team/pods/p1", res("update", "", "v1", "pods", "", "team", "p1", "/api/v1/namespaces/team/pods/p1")},
		{"PATCH", "/api/v1/nodes/n1/status", res("patch", "", "v1", "nodes", "status", "", "n1", "/api/v1/nodes/n1/status")},
		{"DELETE", "/api/v1/namespaces/team/pods/p1", res("delete", "", "v1", "pods", "", "team", "p1", "/api/v1/namespaces/team/pods/p1")},
		{"DELETE", "/api/v1/namespaces/team/pods", res("deletecollection", "", "v1", "pods", "", "team", "", "/api/v1/namespaces/team/pods")},
		{"PUT", "/apis/apps/v1/namespaces/team/deployments/d/scale", res("update", "apps", "v1", "deployments", "scale", "team", "d", "/apis/apps/v1/namespaces/team/deployments/d/scale")},
		{"GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles?watch=1", res("watch", "rbac.authorization.k8s.io", "v1", "clusterroles", "", "", "", "/apis/rbac.authorization.k8s.io/v1/clusterroles")},
		// A namespace is its own namespace; status and finalize are its
		// subresources, not resources inside it.
		{"GET", "/api/v1/namespaces/team", res("get", "", "v1", "namespaces", "", "team", "team", "/api/v1/namespaces/team")},
		{"PUT", "/api/v1/namespaces/team/finalize", res("update", "", "v1", "namespaces", "finalize", "team", "team", "/api/v1/namespaces/team/finalize")},
		{"GET", "/api/v1/namespaces", res("list", "", "v1", "namespaces", "", "", "", "/api/v1/namespaces")},
		// A metadata.name field selector names the object of a list or watch.
		{"GET", "/api/v1/namespaces/team/secrets?fieldSelector=metadata.name%3Ds1&watch=true",
			func() attrs {
				a := res("watch", "", "v1", "secrets", "", "team", "s1", "/api/v1/namespaces/team/secrets")
				a.FieldSelector = "metadata.name=s1"
				return a
			}()},
		{"GET", "/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls",
			func() attrs {
				a := res("list", "", "v1", "secrets", "", "", "", "/api/v1/secrets")
				a.FieldSelector = "type=kubernetes.io/tls"
				return a
			}()},
		{"GET", "/healthz", nonRes("get", "/healthz")},
		{"GET", "/livez/ping", nonRes("get", "/livez/ping")},
		{"GET", "/version", nonRes("get", "/version")},
		{"GET", "/openapi/v3", nonRes("get", "/openapi/v3")},
		{"GET", "/openapi/v3/apis/apps/v1", nonRes("get", "/openapi/v3/apis/apps/v1")},
		{"GET", "/api", nonRes("get", "/api")},
		{"GET", "/api/v1", nonRes("get", "/api/v1")},
		{"GET", "/apis/apps/v1", nonRes("get", "/apis/apps/v1")},
		{"POST", "/metrics", nonRes("post", "/metrics")},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			u := userInfo("u")
			a, err := RequestAttributes(u, httptest.NewRequest(tt.method, tt.url, nil))
			if err != nil {
				t.Fatal(err)
			}
			if a.User != u {
				t.Errorf("user %v, want %v", a.User, u)
			}
			got := attrs{
				Verb: a.Verb, Namespace: a.Namespace, APIGroup: a.APIGroup, APIVersion: a.APIVersion, Resource: a.Resource,
				Subresource: a.Subresource, Name: a.Name, Path: a.Path, ResourceRequest: a.ResourceRequest,
			}
			if reqs, err := a.GetFieldSelector(); err != nil {
				t.Errorf("field selector: %v", err)
			} else if len(reqs) > 0 {
				got.FieldSelector = reqs[0].Field + "=" + reqs[0].Value
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestAttributesBadSelector(t *testing.T) {
	a, err := RequestAttributes(userInfo("u"), httptest.NewRequest("GET", "/api/v1/secrets?fieldSelector=%3D%3D%3D", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetFieldSelector(); err == nil {
		t.Error("no error for a field selector that does not parse")
	}
}

func TestReviewAttributes(t *testing.T) {
	got := ReviewAttributes(authorizationv1.SubjectAccessReviewSpec{
		User: "bob", Groups: []string{"g"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "team", Verb: "get", Resource: "pods", Subresource: "log", Name: "p"},
	})
	if got.GetUser().GetName() != "bob" || got.APIVersion != "*" || !got.ResourceRequest || got.Subresource != "log" {
		t.Errorf("resource review: %+v", got)
	}
	got = ReviewAttributes(authorizationv1.SubjectAccessReviewSpec{
		User: "bob", NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/healthz", Verb: "get"},
	})
	if got.ResourceRequest || got.Path != "/healthz" || got.Verb != "get" {
		t.Errorf("non-resource review: %+v", got)
	}
	var _ authorizer.Attributes = got
}
