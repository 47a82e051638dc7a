package crd

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	apiextensionsfeatures "k8s.io/apiextensions-apiserver/pkg/features"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// openAPI builds upstream's OpenAPI documents of one version and the
// type converter on first use: they cost most of compiling a version,
// and upstream too builds them apart from serving (in its OpenAPI
// controllers, and on a definition's first request).
type openAPI struct {
	crd     *apiextv1.CustomResourceDefinition
	version string

	docsOnce sync.Once
	v3       *spec3.OpenAPI
	v2       *spec.Swagger
	schema   *spec.Schema
	docsErr  error

	tcOnce        sync.Once
	typeConverter managedfields.TypeConverter
}

func newOpenAPI(crd *apiextv1.CustomResourceDefinition, version string) *openAPI {
	return &openAPI{crd: crd.DeepCopy(), version: version}
}

func (o *openAPI) docs() error {
	o.docsOnce.Do(func() {
		crd, version := o.crd, o.version
		selectable := utilfeature.DefaultFeatureGate.Enabled(apiextensionsfeatures.CustomResourceFieldSelectors)
		// As upstream's openapiv3 and openapi (v2) controllers publish them.
		v3, err := builder.BuildOpenAPIV3(crd, version, builder.Options{IncludeSelectableFields: selectable})
		if err != nil {
			o.docsErr = fmt.Errorf("customresourcedefinition %q version %q: openapi v3: %w", crd.Name, version, err)
			return
		}
		v2, err := builder.BuildOpenAPIV2(crd, version, builder.Options{V2: true, IncludeSelectableFields: selectable})
		if err != nil {
			o.docsErr = fmt.Errorf("customresourcedefinition %q version %q: openapi v2: %w", crd.Name, version, err)
			return
		}
		v2.Definitions = handler.PruneDefaults(v2.Definitions)
		name := modelName(crd.Spec.Group, version, crd.Spec.Names.Kind)
		schema, ok := v3.Components.Schemas[name]
		if !ok {
			o.docsErr = fmt.Errorf("customresourcedefinition %q version %q: openapi v3 has no schema %s", crd.Name, version, name)
			return
		}
		o.v3, o.v2, o.schema = v3, v2, schema
	})
	return o.docsErr
}

// typeConverter is what upstream's CRD handler builds for server-side
// apply (buildOpenAPIModelsForApply): the schemas of every version of
// the definition, defaults kept, with what they refer to (ObjectMeta, ...).
//
// As upstream, a definition whose schemas cannot be built into models
// (which validation prevents) is merged with the schema-less converter.
func (o *openAPI) typeConverterOnce() managedfields.TypeConverter {
	o.tcOnce.Do(func() {
		tc, err := typeConverter(o.crd)
		if err != nil {
			tc = managedfields.NewDeducedTypeConverter()
		}
		o.typeConverter = tc
	})
	return o.typeConverter
}

func typeConverter(crd *apiextv1.CustomResourceDefinition) (managedfields.TypeConverter, error) {
	var docs []*spec3.OpenAPI
	for _, v := range crd.Spec.Versions {
		doc, err := builder.BuildOpenAPIV3(crd, v.Name, builder.Options{})
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	merged, err := builder.MergeSpecsV3(docs...)
	if err != nil {
		return nil, err
	}
	return managedfields.NewTypeConverter(merged.Components.Schemas, crd.Spec.PreserveUnknownFields)
}

// modelName is upstream's definition name of a custom kind
// (com.example.stable.v1.CronTab).
func modelName(group, version, kind string) string {
	parts := strings.Split(group, ".")
	slices.Reverse(parts)
	return strings.Join(parts, ".") + "." + version + "." + kind
}

// OpenAPIV3 returns upstream's OpenAPI v3 document of this version: the
// paths of its resource and subresources, and the schemas of its kind
// (com.example.stable.v1.CronTab, with the schema's descriptions that
// kubectl explain prints), its list kind and what they refer to. Merge
// the documents of one group version with builder.MergeSpecsV3. Shared:
// do not modify. It is built on the first call.
func (v *Version) OpenAPIV3() (*spec3.OpenAPI, error) {
	err := v.openapi.docs()
	return v.openapi.v3, err
}

// OpenAPIV2 returns upstream's Swagger 2.0 document of this version, as
// the v2 controller publishes it (v2-compatible schema, defaults
// pruned). Shared: do not modify.
func (v *Version) OpenAPIV2() (*spec.Swagger, error) {
	err := v.openapi.docs()
	return v.openapi.v2, err
}

// Schema returns the v3 schema of the kind from OpenAPIV3: the
// definition's schema with apiVersion, kind and metadata (a reference to
// ObjectMeta) and x-kubernetes-group-version-kind: what the server's own
// OpenAPI documents need of a custom kind. Shared: do not modify.
func (v *Version) Schema() (*spec.Schema, error) {
	err := v.openapi.docs()
	return v.openapi.schema, err
}

// TypeConverter returns the type converter for server-side apply and
// managedFields, from the schemas of all the definition's versions, as
// upstream builds it: list types and map keys from the schema, and, when
// the definition preserves unknown fields, such fields kept. It is built
// on the first call.
func (v *Version) TypeConverter() managedfields.TypeConverter { return v.openapi.typeConverterOnce() }
