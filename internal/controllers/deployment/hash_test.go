package deployment

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nginxTemplate() *v1.PodTemplateSpec {
	return &v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name:  "nginx",
			Image: "nginx:1.14.2",
			Ports: []v1.ContainerPort{{ContainerPort: 80}},
		}}},
	}
}

// The reference values were computed with a transcription of Kubernetes'
// own code, not with computeHash: controller.ComputeHash
// (pkg/controller/controller_utils.go) over hashutil.DeepHashObject
// (pkg/util/hash/hash.go: fmt.Fprintf(hasher, "%v", dump.ForHash(obj))),
// run on nginxTemplate with k8s.io/api v0.37.2. The hash covers every field
// of the k8s.io/api structs, so these values change, in Kubernetes too,
// when a k8s.io/api upgrade adds fields to PodTemplateSpec; update them
// then the same way.
func TestComputeHashMatchesKubernetes(t *testing.T) {
	one := int32(1)
	tests := []struct {
		name      string
		collision *int32
		want      string
	}{
		{"no collisions", nil, "7df89985c6"},
		{"collisionCount 1", &one, "567b557b6f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := computeHash(nginxTemplate(), tt.collision); got != tt.want {
				t.Errorf("computeHash = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestComputeHashStability(t *testing.T) {
	zero, one, two := int32(0), int32(1), int32(2)
	base := computeHash(nginxTemplate(), nil)
	tests := []struct {
		name      string
		mutate    func(*v1.PodTemplateSpec)
		collision *int32
		same      bool
	}{
		{"same template", func(*v1.PodTemplateSpec) {}, nil, true},
		{"a deep copy", func(t *v1.PodTemplateSpec) { *t = *t.DeepCopy() }, nil, true},
		{"another image", func(t *v1.PodTemplateSpec) { t.Spec.Containers[0].Image = "nginx:1.16" }, nil, false},
		{"another label", func(t *v1.PodTemplateSpec) { t.Labels["tier"] = "web" }, nil, false},
		{"an annotation", func(t *v1.PodTemplateSpec) { t.Annotations = map[string]string{"a": "b"} }, nil, false},
		{"a resource limit", func(t *v1.PodTemplateSpec) {
			t.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")}
		}, nil, false},
		{"collisionCount 0 differs from none", func(*v1.PodTemplateSpec) {}, &zero, false},
		{"collisionCount 1", func(*v1.PodTemplateSpec) {}, &one, false},
		{"collisionCount 2", func(*v1.PodTemplateSpec) {}, &two, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := nginxTemplate()
			tt.mutate(tmpl)
			got := computeHash(tmpl, tt.collision)
			if (got == base) != tt.same {
				t.Errorf("computeHash = %q, base %q: same = %v, want %v", got, base, got == base, tt.same)
			}
			if again := computeHash(tmpl, tt.collision); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
}
