package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"wharf.dev/wharf/internal/resources"
)

// request is what a resource URL names.
//
//	/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}
//	/apis/{group}/{version}/{resource}/{name}/{subresource}
type request struct {
	verb        string // get list watch create update patch delete deletecollection
	gvr         schema.GroupVersionResource
	namespace   string
	name        string
	subresource string
	res         *resources.Resource
	// svc: a service write's reservations (servicealloc.go).
	svc *serviceWrite
}

// parsePath splits a resource path; ok is false for paths that are not resource URLs.
func parsePath(path string) (gv schema.GroupVersion, parts []string, ok bool) {
	p := strings.Trim(path, "/")
	segs := strings.Split(p, "/")
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		return schema.GroupVersion{Version: segs[1]}, segs[2:], true
	case len(segs) >= 3 && segs[0] == "apis":
		return schema.GroupVersion{Group: segs[1], Version: segs[2]}, segs[3:], true
	}
	return gv, nil, false
}

// resolve names the resource, object and verb of a request.
func (s *Server) resolve(r *http.Request) (*request, error) {
	gv, parts, ok := parsePath(r.URL.Path)
	if !ok || len(parts) == 0 {
		return nil, errNotFoundPath(r.URL.Path)
	}
	req := &request{}
	// /namespaces/{ns}/{resource}... is inside a namespace, except
	// /namespaces/{name}/status and /finalize, which are the namespace's own.
	nsSub := len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize")
	if parts[0] == "namespaces" && len(parts) >= 3 && !nsSub {
		req.namespace, parts = parts[1], parts[2:]
	}
	req.gvr = gv.WithResource(parts[0])
	if len(parts) > 1 {
		req.name = parts[1]
	}
	if len(parts) > 2 {
		req.subresource = strings.Join(parts[2:], "/")
	}
	res, ok := s.reg.Get(req.gvr)
	if !ok {
		return nil, errNotFoundPath(r.URL.Path)
	}
	req.res = res
	if !res.Namespaced && req.namespace != "" {
		return nil, errNotFoundPath(r.URL.Path)
	}
	q := r.URL.Query()
	watching := q.Get("watch") == "true" || q.Get("watch") == "1"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case req.name == "" && watching:
			req.verb = "watch"
		case req.name == "":
			req.verb = "list"
		default:
			req.verb = "get"
		}
	case http.MethodPost:
		req.verb = "create"
	case http.MethodPut:
		req.verb = "update"
	case http.MethodPatch:
		req.verb = "patch"
	case http.MethodDelete:
		req.verb = "delete"
		if req.name == "" {
			req.verb = "deletecollection"
		}
	default:
		return nil, errMethod(r.Method, req)
	}
	return req, nil
}

// key is where the named object lives in storage.
func (req *request) key() string { return objectKey(req.res, req.namespace, req.name) }

// prefix is the storage prefix of a collection (one namespace or all).
func (req *request) prefix() string {
	p := resourcePrefix(req.res)
	if req.res.Namespaced && req.namespace != "" {
		p += req.namespace + "/"
	}
	return p
}

// resourcePrefix is where a resource's objects are stored: every version
// of a resource shares its storage's.
func resourcePrefix(res *resources.Resource) string {
	res = res.Storage()
	g := res.GVR.Group
	if g == "" {
		g = "core"
	}
	return "/registry/" + g + "/" + res.GVR.Resource + "/"
}

func objectKey(res *resources.Resource, namespace, name string) string {
	if res.Namespaced {
		return resourcePrefix(res) + namespace + "/" + name
	}
	return resourcePrefix(res) + name
}
