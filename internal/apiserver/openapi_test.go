package apiserver

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/kube-openapi/pkg/spec3"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"wharf.dev/wharf/internal/resources"
)

// openAPIServer is a server of reg's kinds (no store: the documents need
// none), with /openapi/v2 routed, behind an authenticator that lets all in.
func openAPIServer(t testing.TB, reg *resources.Registry) (*Server, *httptest.Server) {
	t.Helper()
	s := New(Config{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry:     reg,
		Authenticate: func(*http.Request) (*User, bool) { return &User{Name: "test"}, true },
	})
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.Handle("/openapi/v2", s.withAuth(http.HandlerFunc(s.serveOpenAPIV2)))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return s, hs
}

func serviceRegistry(t testing.TB) *resources.Registry {
	t.Helper()
	reg, err := resources.NewRegistry(resources.NewScheme(), resources.Service()...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func fetch(t testing.TB, hs *httptest.Server, path string, header ...string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

type v3Index struct {
	Paths map[string]struct {
		ServerRelativeURL string `json:"serverRelativeURL"`
	} `json:"paths"`
}

func getIndex(t testing.TB, hs *httptest.Server) v3Index {
	t.Helper()
	var idx v3Index
	if err := json.Unmarshal(fetch(t, hs, "/openapi/v3").body, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func getV3(t testing.TB, hs *httptest.Server, gvPath string) *spec3.OpenAPI {
	t.Helper()
	idx := getIndex(t, hs)
	gv, ok := idx.Paths[gvPath]
	if !ok {
		t.Fatalf("index has no %s: %v", gvPath, idx.Paths)
	}
	r := fetch(t, hs, gv.ServerRelativeURL)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", gv.ServerRelativeURL, r.code, r.body)
	}
	var doc spec3.OpenAPI
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func TestOpenAPIIndexListsEveryGroupVersion(t *testing.T) {
	reg := serviceRegistry(t)
	_, hs := openAPIServer(t, reg)
	idx := getIndex(t, hs)
	want := map[string]bool{}
	for _, res := range reg.All() {
		if !res.CreateOnly && !res.ReadOnly { // reviews are questions, metrics figures: no schema served
			want[gvPath(res.GVR.GroupVersion())] = true
		}
	}
	for p := range want {
		doc := getV3(t, hs, p)
		if doc.Components == nil || len(doc.Components.Schemas) == 0 || len(doc.Paths.Paths) == 0 {
			t.Errorf("%s: no schemas or paths", p)
		}
	}
	if len(idx.Paths) != len(want) {
		t.Errorf("index has %d group versions, want %d", len(idx.Paths), len(want))
	}
	// Every kind has its schema, marked with its group-version-kind, and
	// the operations kubectl looks for.
	for _, res := range reg.All() {
		if res.CreateOnly || res.ReadOnly {
			continue
		}
		gvk := res.GroupVersionKind()
		doc := getV3(t, hs, gvPath(gvk.GroupVersion()))
		listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
		for _, gvk := range []schema.GroupVersionKind{gvk, listGVK} {
			ks := findKind(doc.Components.Schemas, gvk)
			if ks == nil {
				t.Errorf("no schema of %v", gvk)
			} else if kinds, _ := ks.Extensions[ExtGVKKey].([]any); len(kinds) != 1 || ks.Properties["metadata"].AllOf == nil {
				// A definition of its own (not, say, TypeMeta's).
				t.Errorf("%v: schema for kinds %v with properties %v", gvk, kinds, slices.Collect(maps.Keys(ks.Properties)))
			}
		}
		if list := findKind(doc.Components.Schemas, listGVK); list != nil && (list.Description == metav1.TypeMeta{}.SwaggerDoc()[""] || list.Properties["items"].Items == nil) {
			t.Errorf("%v: %q, %v", listGVK, list.Description, list.Properties["items"])
		}
		found := false
		for _, p := range doc.Paths.Paths {
			if op := p.Patch; op != nil && matchesGVK(op.Extensions[ExtGVKKey], gvk) {
				found = true
				if _, ok := op.RequestBody.Content["application/strategic-merge-patch+json"]; !ok {
					t.Errorf("%v: PATCH without strategic merge", gvk)
				}
				if !slices.ContainsFunc(op.Parameters, func(p *spec3.Parameter) bool { return p.Name == "fieldValidation" }) {
					t.Errorf("%v: PATCH without fieldValidation", gvk)
				}
			}
		}
		if !found {
			t.Errorf("%v: no PATCH operation", gvk)
		}
	}
}

const ExtGVKKey = "x-kubernetes-group-version-kind"

func matchesGVK(ext any, gvk schema.GroupVersionKind) bool {
	m, ok := ext.(map[string]any)
	return ok && m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind
}

func findKind(schemas map[string]*spec.Schema, gvk schema.GroupVersionKind) *spec.Schema {
	for _, s := range schemas {
		kinds, _ := s.Extensions[ExtGVKKey].([]any)
		for _, k := range kinds {
			if matchesGVK(k, gvk) {
				return s
			}
		}
	}
	return nil
}

func TestOpenAPIPodSchema(t *testing.T) {
	_, hs := openAPIServer(t, serviceRegistry(t))
	doc := getV3(t, hs, "api/v1")
	schemas := doc.Components.Schemas
	pod := findKind(schemas, corev1.SchemeGroupVersion.WithKind("Pod"))
	if pod == nil {
		t.Fatal("no Pod")
	}
	if pod != schemas["io.k8s.api.core.v1.Pod"] {
		t.Error("the Pod is not io.k8s.api.core.v1.Pod")
	}
	if want := (corev1.Pod{}).SwaggerDoc()[""]; pod.Description != want || want == "" {
		t.Errorf("Pod description %q, want %q", pod.Description, want)
	}
	specRef := pod.Properties["spec"].AllOf[0].Ref.String()
	if specRef != "#/components/schemas/io.k8s.api.core.v1.PodSpec" {
		t.Errorf("spec refers to %q", specRef)
	}
	containers := schemas["io.k8s.api.core.v1.PodSpec"].Properties["containers"]
	for ext, want := range map[string]any{
		"x-kubernetes-patch-merge-key": "name",
		"x-kubernetes-patch-strategy":  "merge",
	} {
		if got := containers.Extensions[ext]; got != want {
			t.Errorf("containers %s = %v, want %v", ext, got, want)
		}
	}
	ports := schemas["io.k8s.api.core.v1.Container"].Properties["ports"]
	if got := ports.Extensions["x-kubernetes-list-map-keys"]; !cmp.Equal(got, []any{"containerPort", "protocol"}) {
		t.Errorf("ports list-map-keys = %v", got)
	}
	if got := ports.Extensions["x-kubernetes-list-type"]; got != "map" {
		t.Errorf("ports list-type = %v", got)
	}
	if want := (corev1.Container{}).SwaggerDoc()["image"]; schemas["io.k8s.api.core.v1.Container"].Properties["image"].Description != want {
		t.Error("no description of container.image")
	}
	// Types with custom JSON, as upstream describes them.
	for name, want := range map[string]string{
		"io.k8s.apimachinery.pkg.apis.meta.v1.Time":       `{"type":"string","format":"date-time"}`,
		"io.k8s.apimachinery.pkg.api.resource.Quantity":   `{"oneOf":[{"type":"string"},{"type":"number"}]}`,
		"io.k8s.apimachinery.pkg.util.intstr.IntOrString": `{"format":"int-or-string","oneOf":[{"type":"integer"},{"type":"string"}]}`,
		"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1":   `{"type":"object"}`,
	} {
		s := *schemas[name]
		s.Description = ""
		got, _ := json.Marshal(s)
		if !jsonEqual(got, []byte(want)) {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
}

// TestOpenAPIMatchesUpstream compares the schemas with upstream's (client-go
// keeps real kube-apiserver documents as test data) where they must agree:
// what kubectl uses to merge and to explain. The test data is from an older
// release: fields added since are not compared.
func TestOpenAPIMatchesUpstream(t *testing.T) {
	_, hs := openAPIServer(t, serviceRegistry(t))
	dir := findModuleDir(t, "k8s.io/client-go") + "/openapi/openapitest/testdata/"
	for gvPath, file := range map[string]string{"api/v1": "api__v1_openapi.json", "apis/apps/v1": "apis__apps__v1_openapi.json"} {
		data, err := os.ReadFile(dir + file)
		if err != nil {
			t.Skip(err)
		}
		var upstream spec3.OpenAPI
		if err := json.Unmarshal(data, &upstream); err != nil {
			t.Fatal(err)
		}
		mine := getV3(t, hs, gvPath).Components.Schemas
		compared := 0
		for name, u := range upstream.Components.Schemas {
			m, ok := mine[name]
			if !ok {
				continue
			}
			if !cmp.Equal(typeOf(m), typeOf(u)) {
				t.Errorf("%s: type %v, upstream %v", name, typeOf(m), typeOf(u))
			}
			for field, up := range u.Properties {
				mp, ok := m.Properties[field]
				if !ok {
					continue
				}
				compared++
				// Changed since the test data was made.
				if name+"."+field == "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement.key" ||
					name+"."+field == "io.k8s.api.core.v1.PersistentVolumeClaimSpec.resources" {
					continue
				}
				for _, ext := range []string{"x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key"} {
					if mp.Extensions[ext] != up.Extensions[ext] {
						t.Errorf("%s.%s: %s %v, upstream %v", name, field, ext, mp.Extensions[ext], up.Extensions[ext])
					}
				}
				if !cmp.Equal(typeOf(&mp), typeOf(&up)) {
					t.Errorf("%s.%s: %v, upstream %v", name, field, typeOf(&mp), typeOf(&up))
				}
			}
		}
		t.Logf("%s: %d fields compared with upstream", gvPath, compared)
	}
}

// typeOf is a schema's type, format and reference.
func typeOf(s *spec.Schema) []string {
	out := append([]string{s.Format, s.Ref.String()}, s.Type...)
	for _, a := range s.AllOf {
		out = append(out, a.Ref.String())
	}
	if s.Items != nil && s.Items.Schema != nil {
		out = append(out, typeOf(s.Items.Schema)...)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		out = append(out, typeOf(s.AdditionalProperties.Schema)...)
	}
	return out
}

func runGo(args ...string) (string, error) {
	out, err := exec.Command("go", args...).Output()
	return string(out), err
}

func findModuleDir(t testing.TB, module string) string {
	t.Helper()
	out, err := runGo("list", "-m", "-f", "{{.Dir}}", module)
	if err != nil {
		t.Skipf("go list %s: %v", module, err)
	}
	return strings.TrimSpace(out)
}

// TestOpenAPIStrategicMergeAsCompiledIn computes kubectl apply's patch of
// a changed Deployment from the v3 schemas, as kubectl 1.27+ does once
// the server lists strategic merge patches, and checks that it is the
// patch kubectl's compiled-in types give.
func TestOpenAPIStrategicMergeAsCompiledIn(t *testing.T) {
	_, hs := openAPIServer(t, serviceRegistry(t))
	doc := getV3(t, hs, "apis/apps/v1")
	deploy := findKind(doc.Components.Schemas, appsv1.SchemeGroupVersion.WithKind("Deployment"))
	fromSchema := strategicpatch.PatchMetaFromOpenAPIV3{SchemaList: doc.Components.Schemas, Schema: deploy}
	fromStruct, err := strategicpatch.NewPatchMetaFromStruct(&appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	original, modified := testDeployment(false), testDeployment(true)
	current := testDeployment(false)
	current.Spec.Replicas = ptrTo(int32(3)) // changed by someone else
	current.Status.Replicas = 3
	enc := func(d *appsv1.Deployment) []byte { b, _ := json.Marshal(d); return b }
	want, err := strategicpatch.CreateThreeWayMergePatch(enc(original), enc(modified), enc(current), fromStruct, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := strategicpatch.CreateThreeWayMergePatch(enc(original), enc(modified), enc(current), fromSchema, true)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(got, want) {
		t.Errorf("patch from the schemas:\n%s\nfrom the Go types:\n%s", got, want)
	}
	patched, err := strategicpatch.StrategicMergePatch(enc(current), got, &appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	var result appsv1.Deployment
	if err := json.Unmarshal(patched, &result); err != nil {
		t.Fatal(err)
	}
	wantSpec := modified.Spec.Template.Spec
	if diff := cmp.Diff(wantSpec, result.Spec.Template.Spec); diff != "" {
		t.Errorf("patched pod spec (-want +got):\n%s", diff)
	}
}

func ptrTo[T any](v T) *T { return &v }

// testDeployment is a Deployment with two containers, ports and env; the
// changed version changes an env value, drops a port and adds a container.
func testDeployment(changed bool) *appsv1.Deployment {
	web := corev1.Container{Name: "web", Image: "nginx",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {Name: "https", ContainerPort: 443, Protocol: corev1.ProtocolTCP}},
		Env:   []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}}
	side := corev1.Container{Name: "side", Image: "busybox", Command: []string{"sleep", "1d"},
		Env: []corev1.EnvVar{{Name: "C", Value: "3"}}}
	containers := []corev1.Container{web, side}
	if changed {
		web.Env = []corev1.EnvVar{{Name: "A", Value: "10"}, {Name: "B", Value: "2"}}
		web.Ports = web.Ports[:1]
		containers = []corev1.Container{web, side, {Name: "extra", Image: "redis", Ports: []corev1.ContainerPort{{ContainerPort: 6379, Protocol: corev1.ProtocolTCP}}}}
	}
	labels := map[string]string{"app": "t"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptrTo(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: containers}},
		},
	}
}

func TestOpenAPIV2(t *testing.T) {
	_, hs := openAPIServer(t, serviceRegistry(t))
	r := fetch(t, hs, "/openapi/v2", "Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != mimeV2Proto {
		t.Fatalf("GET /openapi/v2 protobuf: %d %s", r.code, r.header.Get("Content-Type"))
	}
	var doc openapi_v2.Document
	if err := proto.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range doc.GetDefinitions().GetAdditionalProperties() {
		names[d.GetName()] = true
	}
	for _, want := range []string{"io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.Pod", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
		"io.k8s.api.events.v1.Event", "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"} {
		if !names[want] {
			t.Errorf("no definition %s", want)
		}
	}
	// kubectl reads it into its models (explain, validation): every
	// definition must parse.
	models, err := openapiproto.NewOpenAPIData(&doc)
	if err != nil {
		t.Fatal(err)
	}
	containers := models.LookupModel("io.k8s.api.core.v1.PodSpec").(*openapiproto.Kind).Fields["containers"]
	if got := containers.GetExtensions()["x-kubernetes-patch-merge-key"]; got != "name" {
		t.Errorf("v2 containers merge key %v", got)
	}

	js := fetch(t, hs, "/openapi/v2", "Accept", "application/json")
	if js.code != http.StatusOK || !bytes.Contains(js.body, []byte(`"io.k8s.api.apps.v1.Deployment"`)) {
		t.Fatalf("GET /openapi/v2 JSON: %d", js.code)
	}
	if js.header.Get("Etag") == "" || js.header.Get("Etag") != r.header.Get("Etag") {
		t.Errorf("ETags %q (JSON) and %q (protobuf)", js.header.Get("Etag"), r.header.Get("Etag"))
	}
	if notMod := fetch(t, hs, "/openapi/v2", "Accept", mimeV2ProtoOld, "If-None-Match", r.header.Get("Etag")); notMod.code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", notMod.code)
	}
	if bad := fetch(t, hs, "/openapi/v2", "Accept", "text/html"); bad.code != http.StatusNotAcceptable {
		t.Errorf("Accept text/html: %d, want 406", bad.code)
	}
}

func TestOpenAPICaching(t *testing.T) {
	_, hs := openAPIServer(t, serviceRegistry(t))
	idx := fetch(t, hs, "/openapi/v3")
	etag := idx.header.Get("Etag")
	if etag == "" {
		t.Fatal("index without ETag")
	}
	if r := fetch(t, hs, "/openapi/v3", "If-None-Match", etag); r.code != http.StatusNotModified {
		t.Errorf("index If-None-Match: %d, want 304", r.code)
	}
	url := getIndex(t, hs).Paths["apis/apps/v1"].ServerRelativeURL
	r := fetch(t, hs, url)
	if r.code != http.StatusOK || r.header.Get("Cache-Control") != "public, immutable" {
		t.Errorf("hashed URL: %d, Cache-Control %q", r.code, r.header.Get("Cache-Control"))
	}
	hash := url[strings.Index(url, "hash=")+5:]
	if r.header.Get("Etag") != strconv.Quote(hash) {
		t.Errorf("ETag %s, hash %s", r.header.Get("Etag"), hash)
	}
	if nm := fetch(t, hs, url, "If-None-Match", r.header.Get("Etag")); nm.code != http.StatusNotModified {
		t.Errorf("group If-None-Match: %d, want 304", nm.code)
	}
	if plain := fetch(t, hs, "/openapi/v3/apis/apps/v1"); plain.code != http.StatusOK || plain.header.Get("Cache-Control") != "" {
		t.Errorf("unhashed URL: %d, Cache-Control %q", plain.code, plain.header.Get("Cache-Control"))
	}
	if old := fetch(t, hs, "/openapi/v3/apis/apps/v1?hash=0123"); old.code != http.StatusMovedPermanently || old.header.Get("Location") != url {
		t.Errorf("old hash: %d to %q, want 301 to %q", old.code, old.header.Get("Location"), url)
	}
	if nf := fetch(t, hs, "/openapi/v3/apis/nope/v1"); nf.code != http.StatusNotFound {
		t.Errorf("unknown group: %d", nf.code)
	}
	gz := fetch(t, hs, url, "Accept-Encoding", "gzip")
	if gz.header.Get("Content-Encoding") != "gzip" || len(gz.body) >= len(r.body) {
		t.Errorf("gzip: encoding %q, %d bytes of %d", gz.header.Get("Content-Encoding"), len(gz.body), len(r.body))
	}
}

func TestOpenAPIRuntimeKind(t *testing.T) {
	s, hs := openAPIServer(t, serviceRegistry(t))
	before := getIndex(t, hs)
	gvk := schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"}
	err := s.SetOpenAPIKind(OpenAPIKind{GVK: gvk, Resource: "crontabs", Namespaced: true, Status: true, SchemaJSON: []byte(`{
		"type": "object",
		"properties": {"spec": {"type": "object", "description": "The schedule.", "properties": {
			"cronSpec": {"type": "string"},
			"replicas": {"type": "integer", "format": "int32"},
			"port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	after := getIndex(t, hs)
	if _, ok := after.Paths["apis/stable.example.com/v1"]; !ok {
		t.Fatalf("index without the new group: %v", after.Paths)
	}
	if before.Paths["apis/apps/v1"] != after.Paths["apis/apps/v1"] {
		t.Error("other groups' hashes changed")
	}
	doc := getV3(t, hs, "apis/stable.example.com/v1")
	ct := findKind(doc.Components.Schemas, gvk)
	if ct == nil || ct != doc.Components.Schemas["com.example.stable.v1.CronTab"] {
		t.Fatalf("no com.example.stable.v1.CronTab: %v", doc.Components.Schemas)
	}
	if ct.Properties["spec"].Description != "The schedule." || ct.Properties["metadata"].AllOf[0].Ref.String() != "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
		t.Errorf("CronTab schema: %+v", ct.Properties)
	}
	if doc.Components.Schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"] == nil {
		t.Error("no ObjectMeta")
	}
	for p, item := range doc.Paths.Paths {
		if item.Patch != nil {
			if _, ok := item.Patch.RequestBody.Content["application/strategic-merge-patch+json"]; ok {
				t.Errorf("%s: a custom resource with strategic merge", p)
			}
		}
	}
	// v2 has it, without what Swagger 2.0 cannot say.
	pb := fetch(t, hs, "/openapi/v2", "Accept", mimeV2Proto)
	var v2 openapi_v2.Document
	if err := proto.Unmarshal(pb.body, &v2); err != nil {
		t.Fatal(err)
	}
	if _, err := openapiproto.NewOpenAPIData(&v2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pb.body, []byte("com.example.stable.v1.CronTab")) {
		t.Error("v2 without the CronTab")
	}

	s.RemoveOpenAPIKind(gvk)
	if _, ok := getIndex(t, hs).Paths["apis/stable.example.com/v1"]; ok {
		t.Error("removed group still listed")
	}
	if err := s.SetOpenAPIKind(OpenAPIKind{GVK: gvk, Resource: "crontabs", SchemaJSON: []byte(`{"type": 1}`)}); err == nil {
		t.Error("a bad schema accepted")
	}
}

// TestOpenAPIFigures logs the build time, the sizes and the memory of the
// documents of all Wharf's kinds (service mode).
func TestOpenAPIFigures(t *testing.T) {
	s, _ := openAPIServer(t, serviceRegistry(t))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	snap := s.openAPI()
	v3Time := time.Since(start)
	start = time.Now()
	v2, err := snap.v2()
	if err != nil {
		t.Fatal(err)
	}
	v2Time := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	v3Size, gz := 0, 0
	for _, d := range snap.groups {
		v3Size += len(d.data)
		gz += len(d.gz())
	}
	t.Logf("v3: %d documents, %d KiB (%d KiB gzipped), built in %v", len(snap.groups), v3Size>>10, gz>>10, v3Time.Round(time.Millisecond))
	t.Logf("v2: %d KiB JSON, %d KiB protobuf, built in %v (JSON and protobuf)", len(v2.json.data)>>10, len(v2.proto.data)>>10, v2Time.Round(time.Millisecond))
	t.Logf("heap held by the documents: %d KiB", (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10)
	runtime.KeepAlive(snap)
}

func BenchmarkOpenAPIBuild(b *testing.B) {
	s, _ := openAPIServer(b, serviceRegistry(b))
	b.Run("v3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.InvalidateOpenAPI()
			s.openAPI()
		}
	})
	b.Run("v2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.buildOpenAPI(s.openAPIKinds(nil)).v2(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A kind's own subresources have their operations, as upstream lists
// certificatesigningrequests/{name}/approval.
func TestOpenAPIKindSubresources(t *testing.T) {
	_, hs := openAPIServer(t, serviceRegistry(t))
	doc := getV3(t, hs, "apis/certificates.k8s.io/v1")
	p, ok := doc.Paths.Paths["/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"]
	if !ok {
		t.Fatalf("no approval path: %v", slices.Collect(maps.Keys(doc.Paths.Paths)))
	}
	if p.Get == nil || p.Put == nil || p.Patch == nil || p.Put.OperationId != "replaceCertificatesV1CertificateSigningRequestApproval" {
		t.Errorf("approval operations: get %v put %+v patch %v", p.Get != nil, p.Put, p.Patch != nil)
	}
}
