package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"
)

// MetricsSource lists pods' resource usage (metrics.k8s.io PodMetrics of
// namespace matching selector).
type MetricsSource interface {
	PodMetrics(ctx context.Context, namespace string, selector labels.Selector) ([]metricsv1beta1.PodMetrics, error)
}

// Scaler reads and writes the scale subresource of an HPA's target.
type Scaler interface {
	GetScale(ctx context.Context, namespace string, ref schema.GroupKind, name string) (*autoscalingv1.Scale, schema.GroupResource, error)
	UpdateScale(ctx context.Context, namespace string, gr schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
}

// resourceMetrics turns PodMetrics into usage per pod of resource (the
// pod's sum, or container's alone), in milli-units. A pod missing the
// resource in any container is left out.
func resourceMetrics(items []metricsv1beta1.PodMetrics, resource corev1.ResourceName, container string) podMetrics {
	out := podMetrics{}
	for _, m := range items {
		var sum int64
		missing := len(m.Containers) == 0
		found := container == ""
		for _, c := range m.Containers {
			if container != "" && c.Name != container {
				continue
			}
			found = true
			q, ok := c.Usage[resource]
			if !ok {
				missing = true
				break
			}
			sum += q.MilliValue()
		}
		if !missing && found {
			out[m.Name] = podMetric{timestamp: m.Timestamp.Time, window: m.Window.Duration, value: sum}
		}
	}
	return out
}

// getResourceMetric is Kubernetes' metrics client's GetResourceMetric.
func getResourceMetric(ctx context.Context, src MetricsSource, resource corev1.ResourceName, namespace string, selector labels.Selector, container string) (podMetrics, time.Time, error) {
	items, err := src.PodMetrics(ctx, namespace, selector)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("unable to fetch metrics from resource metrics API: %w", err)
	}
	if len(items) == 0 {
		return nil, time.Time{}, errors.New("no metrics returned from resource metrics API")
	}
	return resourceMetrics(items, resource, container), items[0].Timestamp.Time, nil
}

// apiMetrics reads metrics.k8s.io through a client.
type apiMetrics struct {
	client metricsclient.MetricsV1beta1Interface
}

// NewMetricsSource reads metrics.k8s.io with cfg.
func NewMetricsSource(cfg *rest.Config) (MetricsSource, error) {
	// JSON: the metrics types are read the way kubectl reads them.
	c := rest.CopyConfig(cfg)
	c.ContentType, c.AcceptContentTypes = "application/json", "application/json"
	client, err := metricsclient.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("metrics client: %w", err)
	}
	return apiMetrics{client}, nil
}

func (m apiMetrics) PodMetrics(ctx context.Context, namespace string, selector labels.Selector) ([]metricsv1beta1.PodMetrics, error) {
	list, err := m.client.PodMetricses(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// scaleClient is a Scaler over the generic /scale endpoint: targets are
// found through discovery, so any kind with a scale subresource works.
type scaleClient struct {
	mapper *restmapper.DeferredDiscoveryRESTMapper
	scales scale.ScalesGetter
}

// NewScaler returns a Scaler using cfg.
func NewScaler(cfg *rest.Config) (Scaler, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json"
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("scale client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	scales, err := scale.NewForConfig(cfg, mapper, dynamicPathResolver, scale.NewDiscoveryScaleKindResolver(cached))
	if err != nil {
		return nil, fmt.Errorf("scale client: %w", err)
	}
	return &scaleClient{mapper: mapper, scales: scales}, nil
}

func dynamicPathResolver(gvk schema.GroupVersionKind) string {
	if gvk.Group == "" {
		return "/api"
	}
	return "/apis"
}

func (s *scaleClient) GetScale(ctx context.Context, namespace string, gk schema.GroupKind, name string) (*autoscalingv1.Scale, schema.GroupResource, error) {
	mappings, err := s.mapper.RESTMappings(gk)
	if err != nil {
		s.mapper.Reset() // a kind defined since the last discovery
		if mappings, err = s.mapper.RESTMappings(gk); err != nil {
			return nil, schema.GroupResource{}, err
		}
	}
	var firstErr error
	for _, m := range mappings {
		gr := m.Resource.GroupResource()
		sc, err := s.scales.Scales(namespace).Get(ctx, gr, name, metav1.GetOptions{})
		if err == nil {
			return sc, gr, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("unrecognized resource")
	}
	return nil, schema.GroupResource{}, firstErr
}

func (s *scaleClient) UpdateScale(ctx context.Context, namespace string, gr schema.GroupResource, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return s.scales.Scales(namespace).Update(ctx, gr, sc, metav1.UpdateOptions{})
}
