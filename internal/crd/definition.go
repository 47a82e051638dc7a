package crd

import (
	"context"
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// scheme converts between apiextensions.k8s.io/v1 and the internal types
// upstream's validation is written against, and holds the v1 defaults.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}()

// definitionStrategy is upstream's REST strategy for CRDs: it keeps
// status.storedVersions and generation, and warns about unknown formats.
var definitionStrategy = customresourcedefinition.NewStrategy(scheme)

// DefaultDefinition applies the apiextensions.k8s.io/v1 defaults, as
// decoding a request does upstream: conversion strategy None,
// names.singular (the lower-cased kind) and names.listKind (kind+"List"),
// and the defaults of webhook service references.
func DefaultDefinition(crd *apiextv1.CustomResourceDefinition) {
	scheme.Default(crd)
}

// PrepareDefinition does what upstream's strategy does before validating
// a write of crd, old being the stored definition (nil on create): a new
// definition starts with an empty status and generation 1; an update
// keeps the stored status and bumps generation when the spec changed.
// Either way the storage version joins status.storedVersions, which
// validation requires.
func PrepareDefinition(crd, old *apiextv1.CustomResourceDefinition) error {
	in, err := toInternal(crd)
	if err != nil {
		return err
	}
	if old == nil {
		definitionStrategy.PrepareForCreate(context.Background(), in)
	} else {
		oldIn, err := toInternal(old)
		if err != nil {
			return err
		}
		definitionStrategy.PrepareForUpdate(context.Background(), in, oldIn)
	}
	out := &apiextv1.CustomResourceDefinition{}
	if err := scheme.Convert(in, out, nil); err != nil {
		return fmt.Errorf("customresourcedefinition %q to v1: %w", crd.Name, err)
	}
	*crd = *out
	return nil
}

// ValidateDefinition validates a new definition as upstream does: the
// name is <plural>.<group>, every version has a structural schema whose
// CEL rules compile within the cost budget, exactly one version is
// stored, ... Errors carry the v1 field paths (spec.versions[0].schema.
// openAPIV3Schema.properties[spec].type). Call DefaultDefinition and
// PrepareDefinition first.
func ValidateDefinition(ctx context.Context, crd *apiextv1.CustomResourceDefinition) field.ErrorList {
	in, err := toInternal(crd)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return validation.ValidateCustomResourceDefinition(ctx, in)
}

// ValidateDefinitionUpdate validates an update of old to crd: what
// ValidateDefinition checks, with upstream's allowances for what old
// already had (rules compiled with the stored-expressions CEL
// environment, names immutable once established, ...).
func ValidateDefinitionUpdate(ctx context.Context, crd, old *apiextv1.CustomResourceDefinition) field.ErrorList {
	return validatePair(ctx, crd, old, validation.ValidateCustomResourceDefinitionUpdate)
}

// ValidateDefinitionStatus validates a write of the /status subresource.
func ValidateDefinitionStatus(ctx context.Context, crd, old *apiextv1.CustomResourceDefinition) field.ErrorList {
	return validatePair(ctx, crd, old, validation.ValidateUpdateCustomResourceDefinitionStatus)
}

// validatePair converts a definition and its stored version to the
// internal types upstream's validation takes, and runs validate.
func validatePair(ctx context.Context, crd, old *apiextv1.CustomResourceDefinition,
	validate func(context.Context, *apiextensions.CustomResourceDefinition, *apiextensions.CustomResourceDefinition) field.ErrorList) field.ErrorList {
	in, err := toInternal(crd)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	oldIn, err := toInternal(old)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return validate(ctx, in, oldIn)
}

// DefinitionWarnings returns upstream's warnings for a write of crd (old
// nil on create): formats the schema validator does not know, and
// list-type set on items that are not scalars, when new in crd.
func DefinitionWarnings(ctx context.Context, crd, old *apiextv1.CustomResourceDefinition) []string {
	in, err := toInternal(crd)
	if err != nil {
		return nil
	}
	if old == nil {
		return definitionStrategy.WarningsOnCreate(ctx, in)
	}
	oldIn, err := toInternal(old)
	if err != nil {
		return nil
	}
	return definitionStrategy.WarningsOnUpdate(ctx, in, oldIn)
}

func toInternal(crd *apiextv1.CustomResourceDefinition) (*apiextensions.CustomResourceDefinition, error) {
	out := &apiextensions.CustomResourceDefinition{}
	if err := scheme.Convert(crd, out, nil); err != nil {
		return nil, fmt.Errorf("customresourcedefinition %q to internal: %w", crd.Name, err)
	}
	return out, nil
}
