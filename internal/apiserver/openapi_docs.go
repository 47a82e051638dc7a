package apiserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"unicode"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"wharf.dev/wharf/internal/openapi"
	"wharf.dev/wharf/internal/resources"
)

// apiKind is one kind with a REST resource, for the documents.
type apiKind struct {
	gvk        schema.GroupVersionKind
	resource   string
	namespaced bool
	status     bool
	scale      bool
	res        *resources.Resource // nil for a kind added at run time
	rk         *runtimeKind
}

// openAPIKinds lists the registry's kinds, then those added at run time.
func (s *Server) openAPIKinds(extra map[schema.GroupVersionKind]*runtimeKind) []apiKind {
	var kinds []apiKind
	seen := map[schema.GroupVersionKind]bool{}
	for _, res := range s.reg.All() {
		if res.CreateOnly || res.ReadOnly {
			continue // questions (reviews), not objects: nothing to describe or validate
		}
		if _, custom := res.New().(*unstructured.Unstructured); custom {
			continue // described by its definition's schema, a runtime kind
		}
		gvk := res.GroupVersionKind()
		seen[gvk] = true
		kinds = append(kinds, apiKind{gvk: gvk, resource: res.GVR.Resource, namespaced: res.Namespaced,
			status: res.HasStatus, scale: res.Scale != nil, res: res})
	}
	var more []apiKind
	for gvk, rk := range extra {
		if !seen[gvk] {
			more = append(more, apiKind{gvk: gvk, resource: rk.Resource, namespaced: rk.Namespaced, status: rk.Status, rk: rk})
		}
	}
	slices.SortFunc(more, func(a, b apiKind) int { return strings.Compare(a.gvk.String(), b.gvk.String()) })
	return append(kinds, more...)
}

// kindDefs are the definition names of a kind's object and list.
type kindDefs struct{ object, list string }

var (
	statusGVK = schema.GroupVersionKind{Version: "v1", Kind: "Status"}
	typeMeta  = metav1.TypeMeta{}.SwaggerDoc()
)

// definitions describes kinds and the types their operations use.
func definitions(v openapi.Version, kinds []apiKind) (*openapi.Definitions, map[schema.GroupVersionKind]kindDefs) {
	defs := openapi.NewDefinitions(v)
	names := map[schema.GroupVersionKind]kindDefs{}
	for _, k := range kinds {
		listGVK := k.gvk.GroupVersion().WithKind(k.gvk.Kind + "List")
		if k.res != nil {
			names[k.gvk] = kindDefs{defs.AddKind(k.res.New(), k.gvk), defs.AddKind(k.res.NewList(), listGVK)}
		} else {
			names[k.gvk] = runtimeDefs(defs, k.rk, listGVK)
		}
		if k.scale {
			defs.AddKind(&autoscalingv1.Scale{}, scaleGVK)
		}
	}
	defs.AddKind(&metav1.Status{}, statusGVK)
	defs.Add(&metav1.DeleteOptions{})
	defs.Add(&metav1.Patch{})
	return defs, names
}

// runtimeDefs adds the definitions of a kind added at run time, named as
// upstream names custom resources' (com.example.stable.v1.CronTab).
func runtimeDefs(defs *openapi.Definitions, rk *runtimeKind, listGVK schema.GroupVersionKind) kindDefs {
	gvk := rk.GVK
	parts := strings.Split(gvk.Group, ".")
	slices.Reverse(parts)
	prefix := strings.Join(append(parts, gvk.Version), ".")
	if gvk.Group == "" {
		prefix = gvk.Version
	}
	name, list := prefix+"."+gvk.Kind, prefix+"."+listGVK.Kind

	var s spec.Schema
	if err := json.Unmarshal(rk.schema, &s); err != nil {
		panic(err) // checked by SetOpenAPIKind
	}
	if defs.Version() == openapi.V2 {
		v2Only(&s)
	}
	s.Type = []string{"object"}
	if s.Properties == nil {
		s.Properties = map[string]spec.Schema{}
	}
	for field, doc := range map[string]string{"apiVersion": typeMeta["apiVersion"], "kind": typeMeta["kind"]} {
		if _, ok := s.Properties[field]; !ok {
			s.Properties[field] = *spec.StringProperty().WithDescription(doc)
		}
	}
	if _, ok := s.Properties["metadata"]; !ok || len(s.Properties["metadata"].Properties) == 0 {
		s.Properties["metadata"] = defs.Field(&metav1.ObjectMeta{}, "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
	}
	defs.Set(name, &s)
	defs.MarkKind(name, gvk)

	item := defs.RefField(name, "")
	l := spec.Schema{SchemaProps: spec.SchemaProps{
		Description: gvk.Kind + "List is a list of " + gvk.Kind,
		Type:        []string{"object"},
		Required:    []string{"items"},
		Properties: map[string]spec.Schema{
			"apiVersion": *spec.StringProperty().WithDescription(typeMeta["apiVersion"]),
			"kind":       *spec.StringProperty().WithDescription(typeMeta["kind"]),
			"metadata":   defs.Field(&metav1.ListMeta{}, "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
			"items":      {SchemaProps: spec.SchemaProps{Type: []string{"array"}, Items: &spec.SchemaOrArray{Schema: &item}, Description: "List of " + gvk.Kind}},
		},
	}}
	defs.Set(list, &l)
	defs.MarkKind(list, listGVK)
	return kindDefs{name, list}
}

// v2Only drops from a structural v3 schema what Swagger 2.0 cannot say,
// as upstream does for custom resources' v2 schemas.
func v2Only(s *spec.Schema) {
	s.OneOf, s.AnyOf, s.Not, s.Nullable = nil, nil, nil, false
	if b, _ := s.Extensions.GetBool("x-kubernetes-int-or-string"); b {
		s.Type = nil
	}
	for k, p := range s.Properties {
		v2Only(&p)
		s.Properties[k] = p
	}
	for i := range s.AllOf {
		v2Only(&s.AllOf[i])
	}
	if s.Items != nil && s.Items.Schema != nil {
		v2Only(s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		v2Only(s.AdditionalProperties.Schema)
	}
}

// An operation on a path.
type apiOp struct {
	method, action, id, desc string
	gvk                      schema.GroupVersionKind
	query                    []string // query parameters
	body                     string   // definition of the request body
	consumes                 []string // patch types
	response                 string   // definition of the response
	created                  bool     // 201 too
}

type apiPath struct {
	path  string
	param []string // path parameters
	ops   []apiOp
}

var (
	listQuery   = []string{"allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"}
	writeQuery  = []string{"dryRun", "fieldManager", "fieldValidation"}
	deleteQuery = []string{"dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"}
)

// queryParams are the query parameters' types and descriptions, from the
// options types they decode into.
var queryParams = func() map[string]spec.Schema {
	m := map[string]spec.Schema{}
	for _, opts := range []any{metav1.ListOptions{}, metav1.CreateOptions{}, metav1.PatchOptions{}, metav1.DeleteOptions{}} {
		t := reflect.TypeOf(opts)
		doc := opts.(interface{ SwaggerDoc() map[string]string }).SwaggerDoc()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			typ := "string"
			switch ft.Kind() {
			case reflect.Bool:
				typ = "boolean"
			case reflect.Int, reflect.Int32, reflect.Int64:
				typ = "integer"
			}
			if _, ok := m[name]; !ok && name != "" {
				m[name] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}, UniqueItems: true, Description: doc[name]}}
			}
		}
	}
	return m
}()

// patchTypes are the patch media types the server takes: it tries each.
func patchTypes(strategic bool) []string {
	var out []string
	for _, mt := range []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"} {
		if mt == "application/strategic-merge-patch+json" && !strategic {
			continue // custom resources have no Go type to merge by
		}
		r, _ := http.NewRequest(http.MethodPatch, "/", nil)
		r.Header.Set("Content-Type", mt)
		if _, err := patchType(r); err == nil {
			out = append(out, mt)
		}
	}
	return out
}

// groupName is a group's part of upstream's operation ids: apps → Apps,
// networking.k8s.io → Networking, "" → Core.
func groupName(group string) string {
	if group == "" {
		return "Core"
	}
	var b strings.Builder
	for p := range strings.FieldsFuncSeq(strings.TrimSuffix(group, ".k8s.io"), func(r rune) bool { return r == '.' || r == '-' }) {
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

// apiPaths lists a kind's paths and operations.
func apiPaths(k apiKind, names kindDefs) []apiPath {
	gv := k.gvk.GroupVersion()
	id := groupName(gv.Group) + string(unicode.ToUpper(rune(gv.Version[0]))) + gv.Version[1:]
	base := "/" + gvPath(gv) + "/"
	scope := ""
	var param []string
	if k.namespaced {
		base += "namespaces/{namespace}/"
		scope = "Namespaced"
		param = []string{"namespace"}
	}
	kind := k.gvk.Kind
	patch := patchTypes(k.res != nil)
	hasApply := slices.Contains(patch, "application/apply-patch+yaml")
	patchQuery := writeQuery
	if hasApply {
		patchQuery = append(slices.Clone(writeQuery), "force")
	}
	collection := apiPath{path: base + k.resource, param: param, ops: []apiOp{
		{method: "get", action: "list", id: "list" + id + scope + kind, desc: "list or watch objects of kind " + kind, gvk: k.gvk, query: listQuery, response: names.list},
		{method: "post", action: "post", id: "create" + id + scope + kind, desc: "create a " + kind, gvk: k.gvk, query: writeQuery, body: names.object, response: names.object, created: true},
		{method: "delete", action: "deletecollection", id: "delete" + id + "Collection" + scope + kind, desc: "delete collection of " + kind, gvk: k.gvk, query: append(slices.Clone(listQuery[:len(listQuery)-1]), deleteQuery...), body: "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", response: "io.k8s.apimachinery.pkg.apis.meta.v1.Status"},
	}}
	itemParam := append([]string{"name"}, param...)
	item := apiPath{path: base + k.resource + "/{name}", param: itemParam, ops: []apiOp{
		{method: "get", action: "get", id: "read" + id + scope + kind, desc: "read the specified " + kind, gvk: k.gvk, response: names.object},
		{method: "put", action: "put", id: "replace" + id + scope + kind, desc: "replace the specified " + kind, gvk: k.gvk, query: writeQuery, body: names.object, response: names.object, created: true},
		{method: "patch", action: "patch", id: "patch" + id + scope + kind, desc: "partially update the specified " + kind, gvk: k.gvk, query: patchQuery, body: "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", consumes: patch, response: names.object, created: hasApply},
		{method: "delete", action: "delete", id: "delete" + id + scope + kind, desc: "delete a " + kind, gvk: k.gvk, query: deleteQuery, body: "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", response: "io.k8s.apimachinery.pkg.apis.meta.v1.Status"},
	}}
	paths := []apiPath{collection, item}
	if k.namespaced {
		paths = append(paths, apiPath{path: "/" + gvPath(gv) + "/" + k.resource, ops: []apiOp{
			{method: "get", action: "list", id: "list" + id + kind + "ForAllNamespaces", desc: "list or watch objects of kind " + kind, gvk: k.gvk, query: listQuery, response: names.list},
		}})
	}
	sub := func(name, def string, gvk schema.GroupVersionKind) apiPath {
		suffix := strings.ToUpper(name[:1]) + name[1:]
		return apiPath{path: item.path + "/" + name, param: itemParam, ops: []apiOp{
			{method: "get", action: "get", id: "read" + id + scope + kind + suffix, desc: "read " + name + " of the specified " + kind, gvk: gvk, response: def},
			{method: "put", action: "put", id: "replace" + id + scope + kind + suffix, desc: "replace " + name + " of the specified " + kind, gvk: gvk, query: writeQuery, body: def, response: def, created: true},
			{method: "patch", action: "patch", id: "patch" + id + scope + kind + suffix, desc: "partially update " + name + " of the specified " + kind, gvk: gvk, query: patchQuery, body: "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", consumes: patch, response: def, created: hasApply},
		}}
	}
	if k.status {
		paths = append(paths, sub("status", names.object, k.gvk))
	}
	if k.scale {
		paths = append(paths, sub("scale", openapi.Name(reflect.TypeFor[autoscalingv1.Scale]()), scaleGVK))
	}
	if k.res != nil {
		for _, s := range k.res.Subresources {
			paths = append(paths, sub(s.Name, names.object, k.gvk))
		}
	}
	return paths
}

var pathParamDoc = map[string]string{
	"name":      "name of the object",
	"namespace": "object name and auth scope, such as for teams and projects",
}

func gvkExt(gvk schema.GroupVersionKind) map[string]string {
	return map[string]string{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

var (
	produces   = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	bearerAuth = map[string]any{"BearerToken": map[string]string{"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}}
	security   = []map[string][]string{{"BearerToken": {}}}
)

// openAPIV3 is the OpenAPI v3 document of one group version's kinds.
func (s *Server) openAPIV3(kinds []apiKind) map[string]any {
	defs, names := definitions(openapi.V3, kinds)
	ref := func(name string) map[string]string { return map[string]string{"$ref": "#/components/schemas/" + name} }
	content := func(def string, types []string) map[string]any {
		c := map[string]any{}
		for _, t := range types {
			c[t] = map[string]any{"schema": ref(def)}
		}
		return c
	}
	param := func(name, in string) map[string]any {
		p := map[string]any{"name": name, "in": in, "schema": map[string]any{"type": "string", "uniqueItems": true}}
		if in == "path" {
			p["required"] = true
			p["description"] = pathParamDoc[name]
		} else {
			q := queryParams[name]
			p["description"] = q.Description
			p["schema"] = map[string]any{"type": q.Type[0], "uniqueItems": true}
		}
		return p
	}
	paths := map[string]any{}
	for _, k := range kinds {
		for _, p := range apiPaths(k, names[k.gvk]) {
			item := map[string]any{}
			var params []map[string]any
			for _, name := range p.param {
				params = append(params, param(name, "path"))
			}
			item["parameters"] = append(params, map[string]any{"name": "pretty", "in": "query", "description": "If 'true', then the output is pretty printed.", "schema": map[string]any{"type": "string", "uniqueItems": true}})
			for _, op := range p.ops {
				o := map[string]any{
					"operationId":                     op.id,
					"description":                     op.desc,
					"tags":                            []string{strings.ToLower(groupName(k.gvk.Group)) + "_" + k.gvk.Version},
					"x-kubernetes-action":             op.action,
					"x-kubernetes-group-version-kind": gvkExt(op.gvk),
				}
				var qs []map[string]any
				for _, q := range op.query {
					qs = append(qs, param(q, "query"))
				}
				if len(qs) > 0 {
					o["parameters"] = qs
				}
				if op.body != "" {
					types := []string{"*/*"}
					if op.consumes != nil {
						types = op.consumes
					}
					o["requestBody"] = map[string]any{"content": content(op.body, types), "required": op.method != "delete"}
				}
				responses := map[string]any{
					"200": map[string]any{"description": "OK", "content": content(op.response, produces)},
					"401": map[string]any{"description": "Unauthorized"},
				}
				if op.created {
					responses["201"] = map[string]any{"description": "Created", "content": content(op.response, produces)}
				}
				o["responses"] = responses
				item[op.method] = o
			}
			paths[p.path] = item
		}
	}
	return map[string]any{
		"openapi": "3.0.0",
		"info":    s.openAPIInfo(),
		"paths":   paths,
		"components": map[string]any{
			"schemas":         defs.Schemas(),
			"securitySchemes": bearerAuth,
		},
		"security": security,
	}
}

// openAPIV2 is the Swagger 2.0 document of all kinds.
func (s *Server) openAPIV2(kinds []apiKind) map[string]any {
	defs, names := definitions(openapi.V2, kinds)
	ref := func(name string) map[string]string { return map[string]string{"$ref": "#/definitions/" + name} }
	param := func(name, in string) map[string]any {
		p := map[string]any{"name": name, "in": in, "type": "string", "uniqueItems": true}
		if in == "path" {
			p["required"] = true
			p["description"] = pathParamDoc[name]
		} else {
			q := queryParams[name]
			p["description"] = q.Description
			p["type"] = q.Type[0]
		}
		return p
	}
	paths := map[string]any{}
	for _, k := range kinds {
		for _, p := range apiPaths(k, names[k.gvk]) {
			item := map[string]any{}
			var params []map[string]any
			for _, name := range p.param {
				params = append(params, param(name, "path"))
			}
			item["parameters"] = append(params, map[string]any{"name": "pretty", "in": "query", "type": "string", "uniqueItems": true, "description": "If 'true', then the output is pretty printed."})
			for _, op := range p.ops {
				o := map[string]any{
					"operationId":                     op.id,
					"description":                     op.desc,
					"tags":                            []string{strings.ToLower(groupName(k.gvk.Group)) + "_" + k.gvk.Version},
					"schemes":                         []string{"https"},
					"produces":                        produces,
					"consumes":                        []string{"*/*"},
					"x-kubernetes-action":             op.action,
					"x-kubernetes-group-version-kind": gvkExt(op.gvk),
				}
				if op.consumes != nil {
					o["consumes"] = op.consumes
				}
				var qs []map[string]any
				if op.body != "" {
					qs = append(qs, map[string]any{"name": "body", "in": "body", "required": op.method != "delete", "schema": ref(op.body)})
				}
				for _, q := range op.query {
					qs = append(qs, param(q, "query"))
				}
				if len(qs) > 0 {
					o["parameters"] = qs
				}
				responses := map[string]any{
					"200": map[string]any{"description": "OK", "schema": ref(op.response)},
					"401": map[string]any{"description": "Unauthorized"},
				}
				if op.created {
					responses["201"] = map[string]any{"description": "Created", "schema": ref(op.response)}
				}
				o["responses"] = responses
				item[op.method] = o
			}
			paths[p.path] = item
		}
	}
	return map[string]any{
		"swagger":             "2.0",
		"info":                s.openAPIInfo(),
		"paths":               paths,
		"definitions":         defs.Schemas(),
		"securityDefinitions": bearerAuth,
		"security":            security,
	}
}

// v2Proto is the v2 document in protobuf, converted as upstream does:
// gnostic's document parsed from the JSON, marshalled.
func v2Proto(data []byte) ([]byte, error) {
	doc, err := openapi_v2.ParseDocument(data)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

func (s *Server) openAPIInfo() map[string]string {
	v := s.cfg.Version.GitVersion
	if v == "" {
		v = "unversioned"
	}
	return map[string]string{"title": "Wharf", "version": v}
}
