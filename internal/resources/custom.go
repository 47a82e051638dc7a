package resources

import (
	"context"
	"fmt"
	"slices"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"wharf.dev/wharf/internal/crd"
)

// CleanupFinalizer holds a CustomResourceDefinition back until its objects
// are deleted, as upstream's.
const CleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"

// CustomResourceDefinitions is apiextensions.k8s.io/v1
// customresourcedefinitions: validated and defaulted by upstream's code
// (internal/crd); the server then serves each established definition's
// versions as resources of their own (Custom).
func CustomResourceDefinitions() *Resource {
	def := func(o runtime.Object) *apiextv1.CustomResourceDefinition {
		return o.(*apiextv1.CustomResourceDefinition)
	}
	return &Resource{
		GVR:          apiextv1.SchemeGroupVersion.WithResource("customresourcedefinitions"),
		Kind:         "CustomResourceDefinition",
		SingularName: "customresourcedefinition",
		ShortNames:   []string{"crd", "crds"},
		Categories:   []string{"api-extensions"},
		New:          func() runtime.Object { return &apiextv1.CustomResourceDefinition{} },
		NewList:      func() runtime.Object { return &apiextv1.CustomResourceDefinitionList{} },
		HasStatus:    true,
		Default:      func(o runtime.Object) { crd.DefaultDefinition(def(o)) },
		PrepareForCreate: func(o runtime.Object) {
			d := def(o)
			crd.PrepareDefinition(d, nil)
			if !slices.Contains(d.Finalizers, CleanupFinalizer) {
				d.Finalizers = append(d.Finalizers, CleanupFinalizer)
			}
		},
		PrepareForUpdate: func(o, old runtime.Object) { crd.PrepareDefinition(def(o), def(old)) },
		ValidateWrite: func(ctx context.Context, o, old runtime.Object) field.ErrorList {
			if old == nil {
				return crd.ValidateDefinition(ctx, def(o))
			}
			return crd.ValidateDefinitionUpdate(ctx, def(o), def(old))
		},
		ValidateStatus: func(o, old runtime.Object) field.ErrorList {
			return crd.ValidateDefinitionStatus(context.Background(), def(o), def(old))
		},
		Columns: []metav1.TableColumnDefinition{nameColumn, {Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}},
		Row: func(o runtime.Object) []any {
			d := def(o)
			return []any{d.Name, d.CreationTimestamp.UTC().Format("2006-01-02T15:04:05Z")}
		},
	}
}

// Custom is the resource of one served version of an established
// CustomResourceDefinition, its objects *unstructured.Unstructured.
func Custom(def *apiextv1.CustomResourceDefinition, v *crd.Version) *Resource {
	gvk := v.GroupVersionKind()
	names := def.Status.AcceptedNames
	u := func(o runtime.Object) *unstructured.Unstructured { return o.(*unstructured.Unstructured) }
	old := func(o runtime.Object) *unstructured.Unstructured {
		if o == nil {
			return nil
		}
		return u(o)
	}
	res := &Resource{
		GVR:          gvk.GroupVersion().WithResource(names.Plural),
		Kind:         gvk.Kind,
		SingularName: names.Singular,
		Namespaced:   def.Spec.Scope == apiextv1.NamespaceScoped,
		ShortNames:   names.ShortNames,
		Categories:   names.Categories,
		New: func() runtime.Object {
			o := &unstructured.Unstructured{}
			o.SetGroupVersionKind(gvk)
			return o
		},
		NewList: func() runtime.Object {
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(gvk.GroupVersion().WithKind(names.ListKind))
			return l
		},
		HasStatus: v.HasStatus(),
		Default:   func(o runtime.Object) { v.Default(u(o)) },
		Prune:     func(o runtime.Object) ([]string, error) { return v.Prune(u(o)) },
		ValidateWrite: func(ctx context.Context, o, prev runtime.Object) field.ErrorList {
			return v.Validate(ctx, u(o), old(prev))
		},
		ValidateStatus: func(o, prev runtime.Object) field.ErrorList {
			return v.ValidateStatus(context.Background(), u(o), old(prev))
		},
		TypeConverter: func() managedfields.TypeConverter { return v.TypeConverter() },
		Columns:       v.Columns(),
		Row:           func(o runtime.Object) []any { return v.Row(u(o)) },
		Fields: func(o runtime.Object) fields.Set {
			set, err := v.SelectableFields(u(o))
			if err != nil {
				return fields.Set{}
			}
			return set
		},
	}
	if sc := v.Scale(); sc != nil {
		res.Scale = &ScaleAccessor{
			Get: func(o runtime.Object) (int32, int32, string) {
				spec, status, sel, _, _ := sc.Get(u(o))
				return spec, status, sel
			},
			SetReplicas: func(o runtime.Object, n int32) {
				if err := sc.SetReplicas(u(o), n); err != nil {
					panic(fmt.Sprintf("set replicas of %s: %v", gvk.Kind, err)) // paths were validated with the definition
				}
			},
		}
	}
	return res
}
