package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestPodRequests(t *testing.T) {
	const mi = 1024 * 1024
	tests := []struct {
		name        string
		pod         *corev1.Pod
		want        resources
		wantNonzero resources
	}{
		{
			name:        "best effort",
			pod:         makePod("p", withContainer()),
			wantNonzero: resources{milliCPU: defaultMilliCPURequest, memory: defaultMemoryRequest},
		},
		{
			name: "containers summed",
			pod:  makePod("p", withContainer("cpu", "100m", "memory", "10Mi"), withContainer("cpu", "250m", "ephemeral-storage", "1Gi")),
			want: resources{milliCPU: 350, memory: 10 * mi, ephemeral: 1024 * mi},
			// The second container states no memory: the scoring default applies to it alone.
			wantNonzero: resources{milliCPU: 350, memory: 10*mi + defaultMemoryRequest},
		},
		{
			name:        "explicit zero stays zero for scoring",
			pod:         makePod("p", withContainer("cpu", "0", "memory", "0")),
			wantNonzero: resources{},
		},
		{
			name:        "init container peak wins",
			pod:         makePod("p", withContainer("cpu", "100m", "memory", "1Mi"), withInitContainer(false, "cpu", "500m", "memory", "1Mi")),
			want:        resources{milliCPU: 500, memory: mi},
			wantNonzero: resources{milliCPU: 500, memory: mi},
		},
		{
			name: "sidecars add to containers and to later init containers",
			pod: makePod("p", withContainer("cpu", "100m", "memory", "1Mi"),
				withInitContainer(true, "cpu", "50m", "memory", "1Mi"),
				withInitContainer(false, "cpu", "400m", "memory", "1Mi")),
			want:        resources{milliCPU: 450, memory: 2 * mi},
			wantNonzero: resources{milliCPU: 450, memory: 2 * mi},
		},
		{
			name:        "overhead added",
			pod:         makePod("p", withContainer("cpu", "100m", "memory", "1Mi"), withOverhead("cpu", "10m", "memory", "1Mi")),
			want:        resources{milliCPU: 110, memory: 2 * mi},
			wantNonzero: resources{milliCPU: 110, memory: 2 * mi},
		},
		{
			name: "extended resources",
			pod:  makePod("p", withContainer("cpu", "1", "memory", "1Mi", "example.com/gpu", "2"), withInitContainer(false, "example.com/gpu", "3")),
			want: resources{milliCPU: 1000, memory: mi, scalars: []scalar{{name: "example.com/gpu", value: 3}}},
			// The init container states no memory, so its scoring default is the peak.
			wantNonzero: resources{milliCPU: 1000, memory: defaultMemoryRequest},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := cmp.AllowUnexported(resources{}, scalar{})
			if diff := cmp.Diff(tc.want, podRequests(tc.pod, false), opts); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNonzero, podRequests(tc.pod, true), opts); diff != "" {
				t.Errorf("non-zero requests (-want +got):\n%s", diff)
			}
		})
	}
}
