package openapi

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type testEmbedded struct {
	Inlined string `json:"inlined"`
}

type testItem struct {
	Name string `json:"name"`
}

type testKind struct {
	metav1.TypeMeta `json:",inline"`
	testEmbedded    `json:",inline"`
	Meta            metav1.ObjectMeta    `json:"metadata,omitempty"`
	Count           int32                `json:"count,omitempty"`
	Big             *int64               `json:"big,omitempty"`
	Ratio           float64              `json:"ratio,omitempty"`
	On              bool                 `json:"on"`
	Data            []byte               `json:"data,omitempty"`
	Labels          map[string]string    `json:"labels,omitempty"`
	Items           []testItem           `json:"items,omitempty" patchStrategy:"merge" patchMergeKey:"name"`
	When            metav1.Time          `json:"when,omitempty"`
	Size            resource.Quantity    `json:"size,omitempty"`
	Port            intstr.IntOrString   `json:"port,omitempty"`
	Raw             runtime.RawExtension `json:"raw,omitempty"`
	Skipped         string               `json:"-"`
}

func (testKind) SwaggerDoc() map[string]string {
	return map[string]string{"": "A kind for tests.", "count": "How many."}
}

func schemaJSON(t *testing.T, d *Definitions, name string) map[string]any {
	t.Helper()
	s := d.Get(name)
	if s == nil {
		t.Fatalf("no definition %s", name)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDefinitions(t *testing.T) {
	for _, tc := range []struct {
		v     Version
		ref   func(string) any
		props map[string]any
		extra map[string]any // definitions beside the kind
	}{
		{
			v:   V2,
			ref: func(n string) any { return map[string]any{"$ref": "#/definitions/" + n} },
			extra: map[string]any{
				"io.k8s.apimachinery.pkg.api.resource.Quantity":   map[string]any{"type": "string"},
				"io.k8s.apimachinery.pkg.util.intstr.IntOrString": map[string]any{"type": "string", "format": "int-or-string"},
				"io.k8s.apimachinery.pkg.runtime.RawExtension":    map[string]any{"type": "object"},
			},
		},
		{
			v: V3,
			ref: func(n string) any {
				return map[string]any{"allOf": []any{map[string]any{"$ref": "#/components/schemas/" + n}}, "default": map[string]any{}}
			},
			extra: map[string]any{
				"io.k8s.apimachinery.pkg.api.resource.Quantity":   map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}},
				"io.k8s.apimachinery.pkg.util.intstr.IntOrString": map[string]any{"format": "int-or-string", "oneOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}},
				"io.k8s.apimachinery.pkg.runtime.RawExtension":    map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
			},
		},
	} {
		t.Run([]string{"v2", "v3"}[tc.v], func(t *testing.T) {
			d := NewDefinitions(tc.v)
			gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Test"}
			obj := &testKind{}
			name := d.AddKind(&corev1.Pod{}, corev1.SchemeGroupVersion.WithKind("Pod"))
			if name != "io.k8s.api.core.v1.Pod" {
				t.Errorf("Pod's name %q", name)
			}
			name = d.Add(obj)
			if name != "dev.wharf.wharf.internal.openapi.testKind" {
				t.Errorf("name %q", name)
			}
			d.MarkKind(name, gvk)
			d.MarkKind(name, gvk) // once only
			got := schemaJSON(t, d, name)
			props := got["properties"].(map[string]any)
			itemRef := Ref(tc.v, "dev.wharf.wharf.internal.openapi.testItem")
			item := map[string]any{"$ref": itemRef.String()}
			if tc.v == V3 {
				item = map[string]any{"allOf": []any{item}, "default": map[string]any{}}
			}
			want := map[string]any{
				"apiVersion": map[string]any{"type": "string", "description": metav1.TypeMeta{}.SwaggerDoc()["apiVersion"]},
				"kind":       map[string]any{"type": "string", "description": metav1.TypeMeta{}.SwaggerDoc()["kind"]},
				"inlined":    map[string]any{"type": "string"},
				"metadata":   tc.ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
				"count":      map[string]any{"type": "integer", "format": "int32", "description": "How many."},
				"big":        map[string]any{"type": "integer", "format": "int64"},
				"ratio":      map[string]any{"type": "number", "format": "double"},
				"on":         map[string]any{"type": "boolean"},
				"data":       map[string]any{"type": "string", "format": "byte"},
				"labels":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
				"items": map[string]any{"type": "array", "items": item,
					"x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
				"when": tc.ref("io.k8s.apimachinery.pkg.apis.meta.v1.Time"),
				"size": tc.ref("io.k8s.apimachinery.pkg.api.resource.Quantity"),
				"port": tc.ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
				"raw":  tc.ref("io.k8s.apimachinery.pkg.runtime.RawExtension"),
			}
			if tc.v == V3 {
				// Upstream's v3 defaults: zero values of what cannot be omitted.
				want["inlined"].(map[string]any)["default"] = ""
				want["on"].(map[string]any)["default"] = false
				want["labels"].(map[string]any)["additionalProperties"].(map[string]any)["default"] = ""
			}
			// v2 has no defaults; the ref of a field without a
			// description is alone.
			if diff := cmp.Diff(want, props); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]any{"inlined", "on"}, got["required"]); diff != "" {
				t.Errorf("required (-want +got):\n%s", diff)
			}
			if got["description"] != "A kind for tests." {
				t.Errorf("description %v", got["description"])
			}
			if diff := cmp.Diff([]any{map[string]any{"group": "example.com", "version": "v1", "kind": "Test"}}, got["x-kubernetes-group-version-kind"]); diff != "" {
				t.Errorf("gvk (-want +got):\n%s", diff)
			}
			for n, want := range tc.extra {
				s := schemaJSON(t, d, n)
				delete(s, "description")
				if diff := cmp.Diff(want, s); diff != "" {
					t.Errorf("%s (-want +got):\n%s", n, diff)
				}
			}
			// List types and map types from the structured-merge-diff schema.
			container := schemaJSON(t, d, "io.k8s.api.core.v1.Container")["properties"].(map[string]any)
			ports := container["ports"].(map[string]any)
			if ports["x-kubernetes-list-type"] != "map" || !cmp.Equal(ports["x-kubernetes-list-map-keys"], []any{"containerPort", "protocol"}) {
				t.Errorf("container ports: %v", ports)
			}
			if ref := schemaJSON(t, d, "io.k8s.api.core.v1.LocalObjectReference"); ref["x-kubernetes-map-type"] != "atomic" {
				t.Errorf("LocalObjectReference: %v", ref)
			}
			podSpec := schemaJSON(t, d, "io.k8s.api.core.v1.PodSpec")["properties"].(map[string]any)
			if ns := podSpec["nodeSelector"].(map[string]any); ns["x-kubernetes-map-type"] != "atomic" {
				t.Errorf("nodeSelector: %v", ns)
			}
		})
	}
}
