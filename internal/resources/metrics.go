package resources

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// ResourceMetrics are metrics.k8s.io/v1beta1's NodeMetrics and PodMetrics,
// which the server computes from what it scrapes off the agents (as
// metrics-server does) and serves from memory: get and list only, nothing
// stored (apiserver.Config.ResourceMetrics). The columns are
// metrics-server's.
func ResourceMetrics() []*Resource {
	gv := metricsv1beta1.SchemeGroupVersion
	columns := []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"},
		{Name: "CPU", Type: "string", Description: "CPU usage in cores"},
		{Name: "Memory", Type: "string", Description: "Memory working set"},
		{Name: "Window", Type: "string", Description: "Span the usage was measured over"},
	}
	return []*Resource{
		{
			GVR: gv.WithResource("nodes"), Kind: "NodeMetrics", SingularName: "nodemetrics", ReadOnly: true,
			New:     func() runtime.Object { return &metricsv1beta1.NodeMetrics{} },
			NewList: func() runtime.Object { return &metricsv1beta1.NodeMetricsList{} },
			Columns: columns,
			Row: func(obj runtime.Object) []any {
				m := obj.(*metricsv1beta1.NodeMetrics)
				return []any{m.Name, m.Usage.Cpu().String(), m.Usage.Memory().String(), m.Window.Duration.String()}
			},
		},
		{
			GVR: gv.WithResource("pods"), Kind: "PodMetrics", SingularName: "podmetrics", Namespaced: true, ReadOnly: true,
			New:     func() runtime.Object { return &metricsv1beta1.PodMetrics{} },
			NewList: func() runtime.Object { return &metricsv1beta1.PodMetricsList{} },
			Columns: columns,
			Row: func(obj runtime.Object) []any {
				m := obj.(*metricsv1beta1.PodMetrics)
				var cpu, mem resource.Quantity
				for _, c := range m.Containers {
					cpu.Add(*c.Usage.Cpu())
					mem.Add(*c.Usage.Memory())
				}
				return []any{m.Name, cpu.String(), mem.String(), m.Window.Duration.String()}
			},
		},
	}
}
