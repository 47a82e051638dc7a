// Package resources describes every API resource Wharf serves: identity for
// discovery, defaulting, validation, selectable fields and table columns.
// The apiserver package handles all kinds generically through Resource.
package resources

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource is one REST resource (e.g. apps/v1 deployments).
//
// The generic handlers do the work common to all kinds: on create they clear
// Status (when HasStatus) and set generation 1; on a main-resource update they
// keep the stored Status and bump generation when Spec changed; on a status
// update they keep the stored Spec. Hooks below add what is specific to a kind.
type Resource struct {
	GVR          schema.GroupVersionResource
	Kind         string
	SingularName string
	Namespaced   bool
	ShortNames   []string
	Categories   []string

	New     func() runtime.Object
	NewList func() runtime.Object

	// CreateOnly marks a question, not an object (SelfSubjectAccessReview,
	// TokenReview, ...): create answers it in the returned object's status
	// and nothing is stored; no other verb is served.
	CreateOnly bool
	// ReadOnly marks figures the server computes rather than stores
	// (metrics.k8s.io): only get and list are served, from memory.
	ReadOnly bool

	// HasStatus adds a /status subresource and the Spec/Status split above.
	HasStatus bool
	// KeepStatusOnCreate keeps a Status given on create (nodes register with status).
	KeepStatusOnCreate bool
	// Scale, when set, adds a /scale subresource (autoscaling/v1 Scale).
	Scale *ScaleAccessor

	// Default fills unset fields; called before validation on create and update.
	Default func(obj runtime.Object)
	// PrepareForCreate runs after the generic create preparation (e.g. a pod's phase Pending).
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate, when set, runs on a main-resource update after the
	// generic update preparation and Default, before admission and validation.
	// It reconciles what a client cannot be expected to: a service whose type
	// changes drops the old type's nodePorts and traffic policy, and one sent
	// without its allocated clusterIP or nodePorts keeps them.
	PrepareForUpdate func(obj, old runtime.Object)
	// PrepareForStatusUpdate, when set, runs on a /status update after the
	// generic preparation (spec and metadata as stored) and Default: it
	// keeps what /status may not change either (a certificate request's
	// approval).
	PrepareForStatusUpdate func(obj, old runtime.Object)
	// Subresources are further writes of part of an object, at
	// {name}/{Subresource.Name}, prepared as /status writes are (spec and
	// metadata as stored), then by their own PrepareForUpdate.
	Subresources []Subresource
	// Validate checks a whole object, on create and on update. Object metadata
	// (name, labels, annotations, ...) is included.
	Validate func(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks what may not change between old and obj (immutable fields).
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// ValidateStatus checks a status update; nil means only Validate.
	ValidateStatus func(obj, old runtime.Object) field.ErrorList

	// Admit, when set, checks obj against other objects on create (old is
	// nil) and on a main-resource update (not on status updates), after
	// validation passed. objs reads the current state through the store;
	// what it returns is shared and read-only. Return an *errors.StatusError
	// (apierrors.NewInvalid for a field, NewConflict, ...) for the client to
	// see; any other error is a 500. A Cluster uses it to check that its
	// template exists and may be used from its namespace.
	Admit func(ctx context.Context, obj, old runtime.Object, objs Objects) error
	// ValidateDelete, when set, may refuse to start deleting obj (one not
	// already being deleted), with an *errors.StatusError like Admit's: a
	// Cluster being created answers 409 Conflict.
	ValidateDelete func(ctx context.Context, obj runtime.Object, objs Objects) error

	// Custom resources (a CustomResourceDefinition's versions) set the
	// three hooks below; built-in kinds mostly leave them nil.
	//
	// Prune drops the fields a decoded object's schema does not know and
	// returns their paths (refused under fieldValidation=Strict, warned of
	// otherwise); an error is malformed metadata.
	Prune func(obj runtime.Object) ([]string, error)
	// ValidateWrite, when set, replaces Validate, the generic metadata
	// update checks and ValidateUpdate: it validates obj, against old on
	// an update (nil on create).
	ValidateWrite func(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// TypeConverter is the schema server-side apply merges objects by.
	TypeConverter func() managedfields.TypeConverter

	// Columns and Row make the metav1.Table kubectl prints; columns with
	// Priority > 0 show with -o wide. Row returns one cell per column.
	Columns []metav1.TableColumnDefinition
	Row     func(obj runtime.Object) []any

	// Fields returns the selectable fields of obj beyond metadata.name and
	// metadata.namespace, which the apiserver adds itself.
	Fields func(obj runtime.Object) fields.Set

	// Conversion, when set, makes this resource another version of
	// Conversion.Storage's: the same stored objects (and storage keys),
	// served in this resource's version, as kube-apiserver serves
	// events.k8s.io/v1 events from core/v1's. New and NewList are of the
	// served version; every hook above takes objects of the stored type
	// (NewStored), so that a version shares its storage's hooks or
	// narrows them (events.k8s.io/v1's stricter validation).
	Conversion *Conversion
}

// Conversion converts between a resource's served version and the version
// its objects are stored in. The functions return new objects and leave
// their argument alone (it may be shared).
type Conversion struct {
	// Storage is the resource whose objects these are.
	Storage *Resource
	// ToServed converts a stored object to the served version.
	ToServed func(stored runtime.Object) (runtime.Object, error)
	// FromServed converts an object of the served version to the stored type.
	FromServed func(served runtime.Object) (runtime.Object, error)
	// FieldLabel, when set, maps a field selector's label of the served
	// version to the stored kind's (Fields); false: not supported. Unset,
	// the labels are the stored kind's.
	FieldLabel func(label string) (string, bool)
}

// Storage returns the resource whose stored objects r serves: r itself
// unless r is another version of one.
func (r *Resource) Storage() *Resource {
	if r.Conversion != nil {
		return r.Conversion.Storage
	}
	return r
}

// NewStored returns an empty object of the type r's objects are stored as,
// the type its hooks take.
func (r *Resource) NewStored() runtime.Object { return r.Storage().New() }

// Served returns a stored object as r serves it: obj itself, or a
// converted copy with r's kind.
func (r *Resource) Served(stored runtime.Object) (runtime.Object, error) {
	if r.Conversion == nil {
		return stored, nil
	}
	out, err := r.Conversion.ToServed(stored)
	if err != nil {
		return nil, fmt.Errorf("convert %s to %s: %w", r.Storage().GroupVersionKind(), r.GroupVersionKind(), err)
	}
	out.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	return out, nil
}

// Stored returns an object of r's version as it is stored: obj itself, or a
// converted copy with the stored kind.
func (r *Resource) Stored(served runtime.Object) (runtime.Object, error) {
	if r.Conversion == nil {
		return served, nil
	}
	out, err := r.Conversion.FromServed(served)
	if err != nil {
		return nil, fmt.Errorf("convert %s to %s: %w", r.GroupVersionKind(), r.Storage().GroupVersionKind(), err)
	}
	out.GetObjectKind().SetGroupVersionKind(r.Storage().GroupVersionKind())
	return out, nil
}

// servedIn returns a resource serving stored's objects in version gv of
// the API, with the same names, hooks and subresources; newObj and
// newList make the served version's objects.
func servedIn(stored *Resource, gv schema.GroupVersion, newObj, newList func() runtime.Object, conv Conversion) *Resource {
	r := *stored
	r.GVR = gv.WithResource(stored.GVR.Resource)
	r.New, r.NewList = newObj, newList
	conv.Storage = stored
	r.Conversion = &conv
	return &r
}

// Objects reads other objects of the server, for Admit and ValidateDelete.
// A missing object is an error for which apierrors.IsNotFound is true.
type Objects interface {
	Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, error)
	// List returns the objects of a resource in namespace ("" all).
	List(ctx context.Context, gvr schema.GroupVersionResource, namespace string) ([]runtime.Object, error)
}

// Subresource is a write of part of an object beside /status (a
// CertificateSigningRequest's /approval): reads return the whole object,
// updates and patches keep what PrepareForUpdate does not take from the
// client's version, and are validated as any update (Validate,
// ValidateUpdate).
type Subresource struct {
	Name string
	// PrepareForUpdate limits obj, the client's version with the stored
	// spec and metadata, to what the subresource may change of old.
	PrepareForUpdate func(obj, old runtime.Object)
}

// Subresource returns the resource's subresource of that name.
func (r *Resource) Subresource(name string) (*Subresource, bool) {
	for i := range r.Subresources {
		if r.Subresources[i].Name == name {
			return &r.Subresources[i], true
		}
	}
	return nil, false
}

// ScaleAccessor reads and writes the replica count and selector behind /scale.
type ScaleAccessor struct {
	// Get returns spec replicas, status replicas and the label selector string.
	Get func(obj runtime.Object) (specReplicas, statusReplicas int32, selector string)
	// SetReplicas sets spec replicas.
	SetReplicas func(obj runtime.Object, replicas int32)
}

// GroupVersionKind returns the kind of the resource's objects.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GVR.GroupVersion().WithKind(r.Kind)
}

// SelectableFields returns every field usable in a field selector for obj.
func (r *Resource) SelectableFields(obj runtime.Object) fields.Set {
	set := fields.Set{}
	if r.Fields != nil {
		set = r.Fields(obj)
	}
	if m, err := meta.Accessor(obj); err == nil {
		set["metadata.name"] = m.GetName()
		if r.Namespaced {
			set["metadata.namespace"] = m.GetNamespace()
		}
	}
	return set
}

// typed adapts a function of a concrete type to the runtime.Object signatures above.
func typed[T runtime.Object](f func(T)) func(runtime.Object) {
	return func(o runtime.Object) { f(o.(T)) }
}

func typedValidate[T runtime.Object](f func(T) field.ErrorList) func(runtime.Object) field.ErrorList {
	return func(o runtime.Object) field.ErrorList { return f(o.(T)) }
}

func typedValidateUpdate[T runtime.Object](f func(T, T) field.ErrorList) func(runtime.Object, runtime.Object) field.ErrorList {
	return func(o, old runtime.Object) field.ErrorList { return f(o.(T), old.(T)) }
}

// typedRowNow adapts a row function that takes the current time, so tests can
// render ages and "(5s ago)" against a fixed clock.
func typedRowNow[T runtime.Object](f func(T, time.Time) []any) func(runtime.Object) []any {
	return func(o runtime.Object) []any { return f(o.(T), time.Now()) }
}

func typedPrepareUpdate[T runtime.Object](f func(T, T)) func(runtime.Object, runtime.Object) {
	return func(o, old runtime.Object) { f(o.(T), old.(T)) }
}

func typedFields[T runtime.Object](f func(T) fields.Set) func(runtime.Object) fields.Set {
	return func(o runtime.Object) fields.Set { return f(o.(T)) }
}
