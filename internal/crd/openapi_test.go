package crd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestOpenAPI(t *testing.T) {
	v := newV1(t)
	s, err := v.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Properties["spec"].Description; got != "Spec is what the CronTab should do." {
		t.Errorf("spec description %q", got)
	}
	if got := s.Properties["spec"].Properties["cronSpec"].Description; got != "The cron schedule, five fields." {
		t.Errorf("spec.cronSpec description %q", got)
	}
	// v3 wraps a reference with siblings in allOf.
	if meta := s.Properties["metadata"]; len(meta.AllOf) != 1 || meta.AllOf[0].Ref.String() != "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
		t.Errorf("metadata %+v", meta)
	}
	gvk, _ := json.Marshal(s.Extensions["x-kubernetes-group-version-kind"])
	if string(gvk) != `[{"group":"stable.example.com","kind":"CronTab","version":"v1"}]` {
		t.Errorf("x-kubernetes-group-version-kind %s", gvk)
	}

	v3, err := v.OpenAPIV3()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"com.example.stable.v1.CronTab", "com.example.stable.v1.CronTabList", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"} {
		if v3.Components.Schemas[name] == nil {
			t.Errorf("v3 has no schema %s", name)
		}
	}
	for _, p := range []string{
		"/apis/stable.example.com/v1/crontabs",
		"/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}",
		"/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status",
		"/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale",
	} {
		if v3.Paths.Paths[p] == nil {
			t.Errorf("v3 has no path %s", p)
		}
	}
	v2, err := v.OpenAPIV2()
	if err != nil {
		t.Fatal(err)
	}
	def, ok := v2.Definitions["com.example.stable.v1.CronTab"]
	if !ok {
		t.Fatal("v2 has no CronTab")
	}
	meta := def.Properties["metadata"]
	if got := meta.Ref.String(); got != "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
		t.Errorf("v2 metadata ref %q", got)
	}
	if d := def.Properties["spec"].Properties["replicas"].Default; d != nil {
		t.Errorf("v2 default not pruned: %v", d)
	}
}

// The type converter knows the list types: ports merge by name, as two
// appliers of a CronTab's ports need, where a schema-less converter
// would replace the list whole.
func TestTypeConverter(t *testing.T) {
	tc := newV1(t).TypeConverter()
	a := edit(t, map[string]any{"spec.ports": []any{map[string]any{"name": "http", "port": int64(80)}}})
	b := edit(t, map[string]any{"spec.ports": []any{map[string]any{"name": "metrics", "port": int64(9090)}}})
	ta, err := tc.ObjectToTyped(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := tc.ObjectToTyped(b)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := ta.Merge(tb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tc.TypedToObject(merged)
	if err != nil {
		t.Fatal(err)
	}
	ports, _, _ := unstructured.NestedSlice(out.(*unstructured.Unstructured).Object, "spec", "ports")
	want := []any{map[string]any{"name": "http", "port": int64(80)}, map[string]any{"name": "metrics", "port": int64(9090)}}
	if diff := cmp.Diff(want, ports); diff != "" {
		t.Errorf("merged ports (-want +got):\n%s", diff)
	}

	// Both versions are known, as upstream's converter knows them.
	beta := object(t, `{apiVersion: stable.example.com/v1beta1, kind: CronTab, metadata: {name: a}, spec: {any: thing}}`)
	if _, err := tc.ObjectToTyped(beta); err != nil {
		t.Errorf("v1beta1 object: %v", err)
	}
	dup := edit(t, map[string]any{"spec.tags": []any{"a", "a"}})
	if _, err := tc.ObjectToTyped(dup); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate set entries: %v", err)
	}
}
