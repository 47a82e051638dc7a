package apiserver

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// connectSubresources are streamed to the node that runs the pod.
var connectSubresources = map[string]bool{"log": true, "exec": true, "attach": true, "portforward": true, "proxy": true}

// handleConnect serves pods/{name}/log, exec, attach and portforward.
func (s *Server) handleConnect(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if !connectSubresources[req.subresource] || req.name == "" {
		return errNotFoundPath(r.URL.Path)
	}
	if s.cfg.Connect == nil {
		return apierrors.NewGenericServerResponse(http.StatusNotImplemented, "", schema.GroupResource{}, "",
			req.gvr.Resource+"/"+req.subresource+" needs a node agent, and this server has none configured", 0, false)
	}
	return s.cfg.Connect(ctx, w, r, ConnectRequest{Namespace: req.namespace, Resource: req.gvr.Resource, Name: req.name, Subresource: req.subresource})
}

// ConnectRequest names the object and stream of a connect request.
type ConnectRequest struct {
	Namespace, Resource, Name, Subresource string
}

// ConnectFunc streams a connect request (log, exec, ...) to where the object runs.
type ConnectFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, c ConnectRequest) error
