package apiserver

import (
	"context"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// ResourceMetricsSource answers metrics.k8s.io from memory, as
// metrics-server does: the latest figures of each node and of each pod
// (in namespace; "" all) whose usage is known.
type ResourceMetricsSource interface {
	NodeMetrics(ctx context.Context) ([]metricsv1beta1.NodeMetrics, error)
	PodMetrics(ctx context.Context, namespace string) ([]metricsv1beta1.PodMetrics, error)
}

// serveResourceMetrics serves get and list of a ReadOnly resource
// (metrics.k8s.io nodes and pods) from cfg.ResourceMetrics.
func (s *Server) serveResourceMetrics(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.verb != "get" && req.verb != "list" {
		return errMethod(r.Method, req)
	}
	if s.cfg.ResourceMetrics == nil {
		return apierrors.NewServiceUnavailable("the server is currently unable to handle the request: no resource metrics are collected")
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid labelSelector: %v", err))
	}
	var items []runtime.Object
	switch req.res.Kind {
	case "NodeMetrics":
		ms, err := s.cfg.ResourceMetrics.NodeMetrics(ctx)
		if err != nil {
			return fmt.Errorf("node metrics: %w", err)
		}
		for i := range ms {
			if (req.name == "" || ms[i].Name == req.name) && sel.Matches(labels.Set(ms[i].Labels)) {
				items = append(items, &ms[i])
			}
		}
	case "PodMetrics":
		ms, err := s.cfg.ResourceMetrics.PodMetrics(ctx, req.namespace)
		if err != nil {
			return fmt.Errorf("pod metrics: %w", err)
		}
		for i := range ms {
			if (req.name == "" || ms[i].Name == req.name) && sel.Matches(labels.Set(ms[i].Labels)) {
				items = append(items, &ms[i])
			}
		}
	default:
		return errNotFoundPath(r.URL.Path)
	}
	if req.name != "" {
		if len(items) == 0 {
			return apierrors.NewNotFound(req.gvr.GroupResource(), req.name)
		}
		return s.writeObject(w, r, http.StatusOK, req, items[0])
	}
	return s.writeList(w, r, req, items, metav1.ListMeta{})
}
