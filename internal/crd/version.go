package crd

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Version is everything one version of a definition means for its
// objects, compiled once (schemas, validators, CEL programs, printer
// columns; the OpenAPI documents and type converter on first use) and
// then safe for concurrent use. Build a new one when the definition
// changes.
//
// A write of an object goes, as upstream: Prune (on decoding the body),
// Default, then PrepareForCreate or PrepareForUpdate (or
// PrepareForStatusUpdate), then Validate (or ValidateStatus).
type Version struct {
	gvk        schema.GroupVersionKind
	namespaced bool
	// structural is nil only for a definition that preserves unknown
	// fields without a schema (apiextensions.k8s.io/v1beta1 ones).
	structural      *structuralschema.Structural
	preserveUnknown bool
	strategy        crStrategy
	statusStrategy  crStatusStrategy
	hasStatus       bool
	scale           *ScaleInfo
	table           *table
	openapi         *openAPI
}

// crStrategy and crStatusStrategy are the methods used of
// upstream's strategies, whose types are unexported.
type crStrategy interface {
	PrepareForCreate(ctx context.Context, obj runtime.Object)
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
	WarningsOnCreate(ctx context.Context, obj runtime.Object) []string
	WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string
	GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error)
}

type crStatusStrategy interface {
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
}

// NewVersion compiles the named version of crd, as upstream's
// customresource_handler.go does when it first serves it. crd should be
// valid (ValidateDefinition); the kind and resource names are the
// accepted ones (status.acceptedNames), or the requested ones before
// they are accepted.
func NewVersion(crd *apiextv1.CustomResourceDefinition, version string) (*Version, error) {
	var spec *apiextv1.CustomResourceDefinitionVersion
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == version {
			spec = &crd.Spec.Versions[i]
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("customresourcedefinition %q has no version %q", crd.Name, version)
	}
	names := crd.Status.AcceptedNames
	if names.Kind == "" || names.Plural == "" {
		names = crd.Spec.Names
	}
	v := &Version{
		gvk:             schema.GroupVersionKind{Group: crd.Spec.Group, Version: version, Kind: names.Kind},
		namespaced:      crd.Spec.Scope == apiextv1.NamespaceScoped,
		preserveUnknown: crd.Spec.PreserveUnknownFields,
	}
	wrap := func(what string, err error) error {
		return fmt.Errorf("customresourcedefinition %q version %q: %s: %w", crd.Name, version, what, err)
	}

	// The structural schema, with defaults pruned as they are applied.
	var schemaProps *apiextensions.JSONSchemaProps
	if spec.Schema != nil && spec.Schema.OpenAPIV3Schema != nil {
		in := &apiextensions.CustomResourceValidation{}
		if err := apiextv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(spec.Schema, in, nil); err != nil {
			return nil, wrap("schema", err)
		}
		schemaProps = in.OpenAPIV3Schema
		s, err := structuralschema.NewStructural(schemaProps)
		if err != nil && !crd.Spec.PreserveUnknownFields {
			return nil, wrap("structural schema", err)
		}
		if err == nil && !crd.Spec.PreserveUnknownFields {
			s = s.DeepCopy()
			if err := structuraldefaulting.PruneDefaults(s); err != nil {
				return nil, wrap("pruning defaults", err)
			}
		}
		if err == nil {
			v.structural = s
		}
	}

	validator, _, err := apiservervalidation.NewSchemaValidator(schemaProps)
	if err != nil {
		return nil, wrap("schema validator", err)
	}
	var statusSpec *apiextensions.CustomResourceSubresourceStatus
	var statusValidator apiservervalidation.SchemaValidator
	var scaleSpec *apiextensions.CustomResourceSubresourceScale
	if sub := spec.Subresources; sub != nil {
		if sub.Status != nil {
			v.hasStatus = true
			statusSpec = &apiextensions.CustomResourceSubresourceStatus{}
			// On /status, only status is validated against its own schema.
			if schemaProps != nil {
				if s, ok := schemaProps.Properties["status"]; ok {
					if statusValidator, _, err = apiservervalidation.NewSchemaValidator(&s); err != nil {
						return nil, wrap("status schema validator", err)
					}
				}
			}
		}
		if sub.Scale != nil {
			scaleSpec = &apiextensions.CustomResourceSubresourceScale{}
			if err := apiextv1.Convert_v1_CustomResourceSubresourceScale_To_apiextensions_CustomResourceSubresourceScale(sub.Scale, scaleSpec, nil); err != nil {
				return nil, wrap("scale subresource", err)
			}
			v.scale = &ScaleInfo{SpecReplicasPath: sub.Scale.SpecReplicasPath, StatusReplicasPath: sub.Scale.StatusReplicasPath}
			if sub.Scale.LabelSelectorPath != nil {
				v.scale.LabelSelectorPath = *sub.Scale.LabelSelectorPath
			}
		}
	}
	// Upstream's strategies compile the CEL rules (with the per-call cost
	// limit) and run every check of a write.
	st := customresource.NewStrategy(nil, v.namespaced, v.gvk, validator, statusValidator, v.structural, statusSpec, scaleSpec, spec.SelectableFields)
	v.strategy = st
	v.statusStrategy = customresource.NewStatusStrategy(st)

	if v.table, err = newTable(spec.AdditionalPrinterColumns); err != nil {
		return nil, wrap("printer columns", err)
	}
	v.openapi = newOpenAPI(crd, version)
	return v, nil
}

// GroupVersionKind is the kind of the version's objects.
func (v *Version) GroupVersionKind() schema.GroupVersionKind { return v.gvk }

// HasStatus reports whether the version has the /status subresource:
// then a write of the object keeps the stored status and a write of
// /status changes only the status.
func (v *Version) HasStatus() bool { return v.hasStatus }

// Scale returns the /scale subresource's paths, nil without it.
func (v *Version) Scale() *ScaleInfo { return v.scale }

// Prune does to a decoded object what upstream's decoder does: it drops
// the fields the schema does not know, except under
// x-kubernetes-preserve-unknown-fields, and nulls the schema does not
// allow; it coerces metadata to ObjectMeta, here and in embedded
// resources, dropping its unknown fields. It returns the dropped paths
// (sorted; "spec.foo", "metadata.bar") for a warning, or for an error
// under fieldValidation=Strict. Metadata of the wrong type is an error.
func (v *Version) Prune(obj *unstructured.Unstructured) ([]string, error) {
	u := obj.Object
	kind, foundKind, err := unstructured.NestedString(u, "kind")
	if err != nil {
		return nil, err
	}
	apiVersion, foundAPIVersion, err := unstructured.NestedString(u, "apiVersion")
	if err != nil {
		return nil, err
	}
	meta, foundMeta, unknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return nil, err
	}
	if !v.preserveUnknown {
		unknown = append(unknown, structuralpruning.PruneWithOptions(u, v.structural, true,
			structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, v.structural)
	}
	ferr, paths := schemaobjectmeta.CoerceWithOptions(nil, u, v.structural, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	if ferr != nil {
		return nil, ferr
	}
	unknown = append(unknown, paths...)
	// Put back what pruning at the root leaves to the decoder.
	if foundKind {
		obj.SetKind(kind)
	}
	if foundAPIVersion {
		obj.SetAPIVersion(apiVersion)
	}
	if foundMeta {
		if err := schemaobjectmeta.SetObjectMeta(u, meta); err != nil {
			return nil, err
		}
	}
	return unknown, nil
}

// Default sets the schema's defaults in obj, as upstream does on every
// decoding of an object (of a request, and when read from storage).
func (v *Version) Default(obj *unstructured.Unstructured) {
	if v.structural != nil {
		structuraldefaulting.Default(obj.Object, v.structural)
	}
}

// PrepareForCreate is upstream's: a new object has generation 1 and,
// with the /status subresource, no status.
func (v *Version) PrepareForCreate(obj *unstructured.Unstructured) {
	v.strategy.PrepareForCreate(context.Background(), obj)
}

// PrepareForUpdate is upstream's for a write of the object itself: with
// the /status subresource, the stored status is kept; generation is
// bumped when anything but metadata changed.
func (v *Version) PrepareForUpdate(obj, old *unstructured.Unstructured) {
	v.strategy.PrepareForUpdate(context.Background(), obj, old)
}

// PrepareForStatusUpdate is upstream's for a write of /status: obj
// becomes old with obj's status (and obj's managedFields).
func (v *Version) PrepareForStatusUpdate(obj, old *unstructured.Unstructured) {
	v.statusStrategy.PrepareForUpdate(context.Background(), obj, old)
}

// Validate checks a write of the object, old being the stored object (nil
// on create), as upstream's strategy does: apiVersion and kind, metadata
// (as for any object: name, labels, ...; and embedded resources'), the
// OpenAPI schema (types, formats, enum, bounds, required, pattern, ...),
// list-type set and map uniqueness, the /scale paths, then the
// x-kubernetes-validations CEL rules within the runtime cost budget
// (transition rules with oldSelf on update only). On update, errors
// already in old are ratcheted as upstream does. Field paths are the
// object's (spec.replicas). It does not check what the server itself
// sets (metadata immutability is in it: resourceVersion, uid, ...).
func (v *Version) Validate(ctx context.Context, obj, old *unstructured.Unstructured) field.ErrorList {
	if old == nil {
		return v.strategy.Validate(ctx, obj)
	}
	return v.strategy.ValidateUpdate(ctx, obj, old)
}

// ValidateStatus checks a write of /status as upstream's status strategy
// does: status against the status schema (paths status.…), metadata
// update rules, list types, the status replicas path, and CEL rules.
func (v *Version) ValidateStatus(ctx context.Context, obj, old *unstructured.Unstructured) field.ErrorList {
	return v.statusStrategy.ValidateUpdate(ctx, obj, old)
}

// Warnings returns upstream's warnings for a write (old nil on create):
// finalizers added that are not domain-qualified.
func (v *Version) Warnings(ctx context.Context, obj, old *unstructured.Unstructured) []string {
	if old == nil {
		return v.strategy.WarningsOnCreate(ctx, obj)
	}
	return v.strategy.WarningsOnUpdate(ctx, obj, old)
}

// SelectableFields returns the fields a field selector may use:
// metadata.name, metadata.namespace when namespaced, and the version's
// selectableFields (spec.color, ... ; "" when absent).
func (v *Version) SelectableFields(obj *unstructured.Unstructured) (fields.Set, error) {
	_, set, err := v.strategy.GetAttrs(obj)
	return set, err
}

// splitPath turns a scale path (.spec.replicas) into its fields.
func splitPath(p string) []string {
	return strings.Split(strings.TrimPrefix(p, "."), ".")
}
