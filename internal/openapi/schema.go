// Package openapi describes Kubernetes-style Go API types as OpenAPI
// schemas, by reflection, the way upstream's generated definitions do:
// json tag names, omitempty for optional fields, the types with custom
// JSON (times, quantities, int-or-strings), descriptions from the
// generated SwaggerDoc methods, patch strategies from struct tags, and
// list and map types from client-go's structured-merge-diff schema.
// Definition names are upstream's (io.k8s.api.core.v1.Pod), so clients
// that look schemas up by name or by group-version-kind find them.
package openapi

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Version is the OpenAPI version schemas are written for: they differ in
// how references are written and in types v2 cannot say (oneOf).
type Version int

const (
	V2 Version = iota // Swagger 2.0: #/definitions/, $ref with siblings
	V3                // OpenAPI 3.0: #/components/schemas/, allOf around $ref
)

// Extension names.
const (
	ExtGVK           = "x-kubernetes-group-version-kind"
	ExtPatchStrategy = "x-kubernetes-patch-strategy"
	ExtPatchMergeKey = "x-kubernetes-patch-merge-key"
	ExtListType      = "x-kubernetes-list-type"
	ExtListMapKeys   = "x-kubernetes-list-map-keys"
	ExtMapType       = "x-kubernetes-map-type"
	ExtPreserve      = "x-kubernetes-preserve-unknown-fields"
)

// Ref returns a reference to the definition name.
func Ref(v Version, name string) spec.Ref {
	if v == V3 {
		return spec.MustCreateRef("#/components/schemas/" + name)
	}
	return spec.MustCreateRef("#/definitions/" + name)
}

// RefName returns the definition name a reference points to, or "".
func RefName(r spec.Ref) string {
	s := r.String()
	if i := strings.LastIndexByte(s, '/'); i >= 0 && strings.HasPrefix(s, "#/") {
		return s[i+1:]
	}
	return ""
}

// Name is the definition name of a named Go type: its OpenAPIModelName
// when it has one, else upstream's REST-friendly name of its package path
// and type name (k8s.io/api/core/v1.Pod → io.k8s.api.core.v1.Pod).
func Name(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if name, ok := own(t, func(n interface{ OpenAPIModelName() string }) string { return n.OpenAPIModelName() }); ok {
		return name
	}
	return util.ToRESTFriendlyName(t.PkgPath() + "." + t.Name())
}

// own calls t's method through interface I, unless t only has it from an
// embedded field: a list kind embedding metav1.TypeMeta is not TypeMeta
// and lacks its SwaggerDoc. (The method of a type and of one it embeds
// give the same result only when it is promoted.)
func own[I any, R any](t reflect.Type, call func(I) R) (R, bool) {
	var zero R
	i, ok := implements[I](t)
	if !ok {
		return zero, false
	}
	r := call(i)
	if t.Kind() == reflect.Struct {
		for f := range t.Fields() {
			if !f.Anonymous {
				continue
			}
			if e, ok := implements[I](deref(f.Type)); ok && reflect.DeepEqual(call(e), r) {
				return zero, false
			}
		}
	}
	return r, true
}

// Definitions collects the schemas of Go types and of all the types they
// refer to. Not safe for concurrent use.
type Definitions struct {
	v     Version
	merge *mergeInfo
	defs  map[string]*spec.Schema
	types map[reflect.Type]string
}

// NewDefinitions returns an empty set of definitions for OpenAPI version v.
func NewDefinitions(v Version) *Definitions {
	return &Definitions{v: v, merge: builtinMerge(), defs: map[string]*spec.Schema{}, types: map[reflect.Type]string{}}
}

// Version is the OpenAPI version of the definitions.
func (d *Definitions) Version() Version { return d.v }

// Add adds the definition of the named type of v (a value or a pointer)
// and of every type it refers to; it returns the definition name.
func (d *Definitions) Add(v any) string { return d.define(reflect.TypeOf(v)) }

// AddKind is Add for the Go type of a kind; the definition is marked with
// its group, version and kind (x-kubernetes-group-version-kind).
func (d *Definitions) AddKind(obj runtime.Object, gvk schema.GroupVersionKind) string {
	name := d.Add(obj)
	d.MarkKind(name, gvk)
	return name
}

// MarkKind adds gvk to the kinds of the definition name.
func (d *Definitions) MarkKind(name string, gvk schema.GroupVersionKind) {
	s := d.defs[name]
	if s == nil {
		return
	}
	kinds, _ := s.Extensions[ExtGVK].([]any)
	want := map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
	for _, k := range kinds {
		if reflect.DeepEqual(k, want) {
			return
		}
	}
	s.AddExtension(ExtGVK, append(kinds, want))
}

// Set sets a ready-made definition (a custom resource's schema).
func (d *Definitions) Set(name string, s *spec.Schema) { d.defs[name] = s }

// Get returns the definition name, or nil.
func (d *Definitions) Get(name string) *spec.Schema { return d.defs[name] }

// Schemas returns the definitions by name.
func (d *Definitions) Schemas() map[string]*spec.Schema { return d.defs }

// The types with custom JSON that say nothing of their schema.
var (
	rawExtension = reflect.TypeFor[runtime.RawExtension]()
	fieldsV1     = reflect.TypeFor[metav1.FieldsV1]()
	byteSlice    = reflect.TypeFor[[]byte]()
)

// schemaTyper is what upstream's types with custom JSON implement
// (metav1.Time, resource.Quantity, intstr.IntOrString, ...).
type schemaTyper interface {
	OpenAPISchemaType() []string
	OpenAPISchemaFormat() string
}

type oneOfTyper interface{ OpenAPIV3OneOfTypes() []string }

func implements[I any](t reflect.Type) (I, bool) {
	if i, ok := reflect.Zero(t).Interface().(I); ok {
		return i, true
	}
	i, ok := reflect.New(t).Interface().(I)
	return i, ok
}

// customJSON says whether a type marshals itself.
func customJSON(t reflect.Type) bool {
	_, m := implements[json.Marshaler](t)
	_, u := implements[json.Unmarshaler](t)
	_, tm := implements[encoding.TextMarshaler](t)
	return m || u || tm
}

// defined says whether a type gets a definition of its own (upstream's
// generated definitions are the named structs and the custom JSON types).
func defined(t reflect.Type) bool {
	if t.Name() == "" || t.PkgPath() == "" {
		return false
	}
	if _, ok := implements[schemaTyper](t); ok {
		return true
	}
	return t.Kind() == reflect.Struct
}

func (d *Definitions) define(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if name, ok := d.types[t]; ok {
		return name
	}
	name := Name(t)
	d.types[t] = name
	s := &spec.Schema{}
	d.defs[name] = s // before the fields: types may refer to themselves
	*s = d.build(t)
	return name
}

func swaggerDoc(t reflect.Type) map[string]string {
	doc, _ := own(t, func(d interface{ SwaggerDoc() map[string]string }) map[string]string { return d.SwaggerDoc() })
	return doc
}

// build returns the schema of a defined type.
func (d *Definitions) build(t reflect.Type) spec.Schema {
	doc := swaggerDoc(t)
	var s spec.Schema
	s.Description = doc[""]
	if st, ok := implements[schemaTyper](t); ok {
		s.Type = st.OpenAPISchemaType()
		s.Format = st.OpenAPISchemaFormat()
		if oo, ok := implements[oneOfTyper](t); ok && d.v == V3 {
			s.Type = nil
			for _, typ := range oo.OpenAPIV3OneOfTypes() {
				s.OneOf = append(s.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}}})
			}
		}
		return s
	}
	switch {
	case t == fieldsV1:
		s.Type = []string{"object"}
		return s
	case t == rawExtension:
		s.Type = []string{"object"}
		if d.v == V3 {
			s.AddExtension(ExtPreserve, true)
		}
		return s
	case customJSON(t):
		// Anything: a value whose shape the type alone does not tell.
		if d.v == V3 {
			s.AddExtension(ExtPreserve, true)
		}
		return s
	}
	s.Type = []string{"object"}
	name := Name(t)
	merge := d.merge.fields[name]
	if d.merge.atomicStructs[name] {
		s.AddExtension(ExtMapType, "atomic")
	}
	d.addFields(&s, t, doc, merge)
	return s
}

// addFields adds the properties of a struct's fields, embedded inline
// structs' fields included.
func (d *Definitions) addFields(s *spec.Schema, t reflect.Type, doc map[string]string, merge map[string]fieldMerge) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" && opts == "" {
			continue
		}
		inline := hasOpt(opts, "inline") || (f.Anonymous && tag == "")
		if inline {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				// The embedding type's merge information has the
				// embedded fields (structured-merge-diff inlines them).
				m := merge
				if m == nil {
					m = d.merge.fields[Name(et)]
				}
				d.addFields(s, et, swaggerDoc(et), m)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		name := tag
		if name == "" {
			name = f.Name
		}
		required := !hasOpt(opts, "omitempty") && !hasOpt(opts, "omitzero")
		p := d.field(f.Type, doc[name], true, required)
		if ps := f.Tag.Get("patchStrategy"); ps != "" {
			p.AddExtension(ExtPatchStrategy, ps)
		}
		if key := f.Tag.Get("patchMergeKey"); key != "" {
			p.AddExtension(ExtPatchMergeKey, key)
		}
		if fm, ok := merge[name]; ok {
			if fm.listType != "" && isList(f.Type) {
				p.AddExtension(ExtListType, fm.listType)
				if len(fm.keys) > 0 {
					p.AddExtension(ExtListMapKeys, fm.keys)
				}
			}
			if fm.mapType != "" && deref(f.Type).Kind() == reflect.Map {
				p.AddExtension(ExtMapType, fm.mapType)
			}
			if fm.def != nil && d.v == V3 && len(p.Type) > 0 {
				p.Default = fm.def
			}
		}
		if s.Properties == nil {
			s.Properties = map[string]spec.Schema{}
		}
		s.Properties[name] = p
		if required {
			s.Required = append(s.Required, name)
		}
	}
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isList(t reflect.Type) bool {
	t = deref(t)
	return (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t != byteSlice && t.Elem().Kind() != reflect.Uint8
}

// field returns the schema of a value of type t with a description.
// Defined types are references: in v2 the description sits beside $ref,
// in v3 the reference is wrapped in allOf, as upstream writes them. As
// upstream's v3, values that cannot be omitted (struct values, required
// fields' scalars, list items and map values) default to their zero value.
func (d *Definitions) field(t reflect.Type, description string, top, required bool) spec.Schema {
	ptr := t.Kind() == reflect.Pointer
	t = deref(t)
	var s spec.Schema
	switch {
	case defined(t):
		name := d.define(t)
		ref := spec.Schema{SchemaProps: spec.SchemaProps{Ref: Ref(d.v, name)}}
		var def any
		if !ptr && t.Kind() == reflect.Struct && d.v == V3 {
			def = map[string]any{}
		}
		if d.v == V2 || (description == "" && def == nil) {
			s = ref
		} else {
			s.AllOf = []spec.Schema{ref}
			s.Default = def
		}
	case t == byteSlice || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8):
		s.Type, s.Format = []string{"string"}, "byte"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		item := d.field(t.Elem(), "", false, true)
		s.Type = []string{"array"}
		s.Items = &spec.SchemaOrArray{Schema: &item}
	case t.Kind() == reflect.Map:
		v := d.field(t.Elem(), "", false, true)
		s.Type = []string{"object"}
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: &v}
	case t.Kind() == reflect.Struct:
		// An anonymous struct: inline.
		s.Type = []string{"object"}
		d.addFields(&s, t, nil, nil)
	default:
		s.Type, s.Format = scalar(t.Kind())
		if (!top || required) && !ptr && len(s.Type) > 0 && d.v == V3 {
			s.Default = reflect.Zero(t).Interface()
		}
		if len(s.Type) == 0 && d.v == V3 {
			s.AddExtension(ExtPreserve, true) // interface{}: anything
		}
	}
	s.Description = description
	return s
}

func scalar(k reflect.Kind) ([]string, string) {
	switch k {
	case reflect.String:
		return []string{"string"}, ""
	case reflect.Bool:
		return []string{"boolean"}, ""
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int, reflect.Uint8, reflect.Uint16:
		return []string{"integer"}, "int32"
	case reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return []string{"integer"}, "int64"
	case reflect.Float32:
		return []string{"number"}, "float"
	case reflect.Float64:
		return []string{"number"}, "double"
	}
	return nil, ""
}

// Field returns the schema of a field holding a value of v's type, with
// a description: a reference for a defined type (added if new), else the
// type inline.
func (d *Definitions) Field(v any, description string) spec.Schema {
	return d.field(reflect.TypeOf(v), description, true, false)
}

// RefField returns a field referring to the definition name.
func (d *Definitions) RefField(name, description string) spec.Schema {
	ref := spec.Schema{SchemaProps: spec.SchemaProps{Ref: Ref(d.v, name)}}
	if d.v == V2 || description == "" {
		ref.Description = description
		return ref
	}
	return spec.Schema{SchemaProps: spec.SchemaProps{AllOf: []spec.Schema{ref}, Description: description}}
}
