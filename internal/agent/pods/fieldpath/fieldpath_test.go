package fieldpath

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestObjectField(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "prod", UID: "u1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": `say "hi"`},
		},
		Spec: v1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"},
	}
	addr := Addresses{PodIPs: []string{"10.244.0.5", "fd00::5"}, HostIPs: []string{"10.0.0.1"}}
	tests := []struct{ path, want string }{
		{"metadata.name", "web"},
		{"metadata.namespace", "prod"},
		{"metadata.uid", "u1"},
		{"spec.nodeName", "n1"},
		{"spec.serviceAccountName", "sa"},
		{"status.podIP", "10.244.0.5"},
		{"status.podIPs", "10.244.0.5,fd00::5"},
		{"status.hostIP", "10.0.0.1"},
		{"metadata.labels", "app=\"web\"\ntier=\"front\""},
		{"metadata.labels['tier']", "front"},
		{"metadata.labels['missing']", ""},
		{"metadata.annotations['note']", `say "hi"`},
		{"metadata.annotations", `note="say \"hi\""`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := ObjectField(pod, tt.path, addr)
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"spec.containers", "metadata.name['x']"} {
		if _, err := ObjectField(pod, bad, addr); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestResourceField(t *testing.T) {
	c := &v1.Container{Resources: v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("100Mi")},
		Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")},
	}}
	node := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("16Gi")}
	tests := []struct {
		resource, divisor, want string
	}{
		{"requests.cpu", "", "1"},
		{"requests.cpu", "1m", "250"},
		{"requests.memory", "1Mi", "100"},
		{"limits.memory", "1Gi", "1"},
		{"limits.cpu", "", "4"},
		{"limits.cpu", "100m", "40"},
	}
	for _, tt := range tests {
		t.Run(tt.resource+"/"+tt.divisor, func(t *testing.T) {
			fs := &v1.ResourceFieldSelector{Resource: tt.resource}
			if tt.divisor != "" {
				fs.Divisor = resource.MustParse(tt.divisor)
			}
			got, err := ResourceField(fs, c, node)
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ResourceField(&v1.ResourceFieldSelector{Resource: "limits.gpu"}, c, node); err == nil {
		t.Error("unsupported resource accepted")
	}
}
