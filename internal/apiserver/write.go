package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"wharf.dev/wharf/internal/storage"
)

// writeKind says which part of an object a write may change.
type writeKind int

const (
	mainWrite        writeKind = iota // everything but status
	statusWrite                       // only status
	finalizeWrite                     // a namespace's spec.finalizers, set by the caller
	subresourceWrite                  // a kind's own subresource (Resource.Subresources): what it prepares
)

func dryRun(r *http.Request) bool {
	for _, v := range r.URL.Query()["dryRun"] {
		if v == "All" {
			return true
		}
	}
	return false
}

// decodeObject reads the request body as an object of the URL's kind,
// converted to the type it is stored as, and checks its namespace against
// the URL's.
func (s *Server) decodeObject(w http.ResponseWriter, r *http.Request, req *request) (runtime.Object, metav1.Object, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	obj := req.res.New()
	if err := s.decodeBody(w, r, data, obj, req.res.GroupVersionKind()); err != nil {
		return nil, nil, err
	}
	if err := s.prune(w, r, req, obj); err != nil {
		return nil, nil, err
	}
	if obj, err = req.res.Stored(obj); err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	return obj, m, s.setNamespace(req, m)
}

func (s *Server) create(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	obj, _, err := s.decodeObject(w, r, req)
	if err != nil {
		return err
	}
	return s.createObject(ctx, w, r, req, obj, false)
}

// createObject stores a new object a request sent (or an apply built:
// applied, its managedFields already say so).
func (s *Server) createObject(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request, obj runtime.Object, applied bool) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	if generated {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
	}
	req = &request{verb: req.verb, gvr: req.gvr, namespace: req.namespace, name: m.GetName(), res: req.res}
	if m.GetName() == "" {
		return invalid(req, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	s.prepareCreate(req, obj, m)
	if !applied {
		if obj, err = s.track(r, req, req.res.NewStored(), obj); err != nil {
			return err
		}
		m, _ = meta.Accessor(obj)
	}
	var stored runtime.Object
	finish := s.startServiceWrite(req, dryRun(r))
	defer func() { finish(ctx, stored) }()
	if err := s.admitCreate(ctx, req, obj); err != nil {
		return err
	}
	if errs := s.validate(ctx, req, obj, nil, mainWrite); len(errs) > 0 {
		return invalid(req, m.GetName(), errs)
	}
	if err := s.admitKind(ctx, req, obj, nil); err != nil {
		return err
	}
	if dryRun(r) {
		return s.writeObject(w, r, http.StatusCreated, req, obj)
	}
	created, err := s.store.Create(ctx, req.key(), obj)
	for i := 0; generated && errors.Is(err, storage.ErrExists) && i < 5; i++ {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
		req.name = m.GetName()
		created, err = s.store.Create(ctx, req.key(), obj)
	}
	if errors.Is(err, storage.ErrExists) {
		return apierrors.NewAlreadyExists(req.gvr.GroupResource(), m.GetName())
	}
	if err != nil {
		return err
	}
	stored = created
	return s.writeObject(w, r, http.StatusCreated, req, created)
}

// prune drops the fields a custom resource's schema does not know, as
// decoding drops them from a built-in kind: refused with
// fieldValidation=Strict, a warning unless Ignore.
func (s *Server) prune(w http.ResponseWriter, r *http.Request, req *request, obj runtime.Object) error {
	if req.res.Prune == nil {
		return nil
	}
	unknown, err := req.res.Prune(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	switch r.URL.Query().Get("fieldValidation") {
	case "Ignore":
	case "Strict":
		if len(unknown) > 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("strict decoding error: unknown field %q", unknown[0]))
		}
	default:
		for _, f := range unknown {
			w.Header().Add("Warning", fmt.Sprintf(`299 - "unknown field \"%s\""`, f))
		}
	}
	return nil
}

// setNamespace checks the object's namespace against the URL's.
func (s *Server) setNamespace(req *request, m metav1.Object) error {
	if !req.res.Namespaced {
		m.SetNamespace("")
		return nil
	}
	switch m.GetNamespace() {
	case "":
		m.SetNamespace(req.namespace)
	case req.namespace:
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)", m.GetNamespace(), req.namespace))
	}
	if req.namespace == "" {
		return apierrors.NewBadRequest("a namespace is required for " + req.gvr.Resource)
	}
	return nil
}

// prepareCreate sets what the server owns on a new object, then defaults it.
func (s *Server) prepareCreate(req *request, obj runtime.Object, m metav1.Object) {
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.Now())
	m.SetResourceVersion("")
	m.SetGeneration(1)
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	res := req.res
	if res.HasStatus && !res.KeepStatusOnCreate {
		clearField(obj, "Status")
	}
	if res.Default != nil {
		res.Default(obj)
	}
	if res.PrepareForCreate != nil {
		res.PrepareForCreate(obj)
	}
}

func clearField(obj runtime.Object, name string) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		delete(u.Object, jsonName(name))
		return
	}
	if f := reflect.ValueOf(obj).Elem().FieldByName(name); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

// jsonName is the JSON name of a top-level field of a custom resource
// ("Spec" → "spec").
func jsonName(name string) string { return strings.ToLower(name[:1]) + name[1:] }

// validate defaults and validates obj (cur is nil on create).
func (s *Server) validate(ctx context.Context, req *request, obj, cur runtime.Object, kind writeKind) field.ErrorList {
	res := req.res
	if res.ValidateWrite != nil {
		if kind == statusWrite && res.ValidateStatus != nil {
			return res.ValidateStatus(obj, cur)
		}
		return res.ValidateWrite(ctx, obj, cur)
	}
	var errs field.ErrorList
	if res.Validate != nil {
		errs = append(errs, res.Validate(obj)...)
	}
	if cur == nil {
		return errs
	}
	newM, _ := meta.Accessor(obj)
	oldM, _ := meta.Accessor(cur)
	errs = append(errs, apivalidation.ValidateObjectMetaAccessorUpdate(newM, oldM, field.NewPath("metadata"))...)
	if res.ValidateUpdate != nil {
		errs = append(errs, res.ValidateUpdate(obj, cur)...)
	}
	if kind == statusWrite && res.ValidateStatus != nil {
		errs = append(errs, res.ValidateStatus(obj, cur)...)
	}
	return errs
}

// prepareUpdate turns a client's new version of an object into what is
// stored, given the current state: it enforces resourceVersion, keeps what
// the server owns, and splits spec from status.
func (s *Server) prepareUpdate(req *request, obj, cur runtime.Object, kind writeKind) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	c, err := meta.Accessor(cur)
	if err != nil {
		return err
	}
	if rv := m.GetResourceVersion(); rv != "" && rv != c.GetResourceVersion() {
		return fmt.Errorf("resourceVersion %s, current %s: %w", rv, c.GetResourceVersion(), storage.ErrConflict)
	}
	if uid := m.GetUID(); uid != "" && uid != c.GetUID() {
		// As in Kubernetes: a uid in the body is a precondition that fails as an invalid field.
		return invalid(req, m.GetName(), field.ErrorList{field.Invalid(field.NewPath("metadata", "uid"), uid, "field is immutable")})
	}
	m.SetUID(c.GetUID())
	m.SetCreationTimestamp(c.GetCreationTimestamp())
	m.SetDeletionTimestamp(c.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(c.GetDeletionGracePeriodSeconds())
	m.SetGeneration(c.GetGeneration())
	m.SetResourceVersion(c.GetResourceVersion())
	m.SetSelfLink("")
	res := req.res
	switch kind {
	case mainWrite:
		if res.HasStatus {
			copyField(obj, cur, "Status")
		}
	case statusWrite, subresourceWrite:
		copyField(obj, cur, "Spec")
		// Status writes change status only: keep the stored metadata.
		if ou, ok := obj.(*unstructured.Unstructured); ok {
			ou.Object["metadata"] = runtime.DeepCopyJSONValue(cur.(*unstructured.Unstructured).Object["metadata"])
			break
		}
		om, _ := obj.(metav1.ObjectMetaAccessor)
		cm, _ := cur.(metav1.ObjectMetaAccessor)
		*om.GetObjectMeta().(*metav1.ObjectMeta) = *cm.GetObjectMeta().(*metav1.ObjectMeta).DeepCopy()
	}
	if res.Default != nil {
		res.Default(obj)
	}
	switch kind {
	case mainWrite:
		if res.PrepareForUpdate != nil {
			res.PrepareForUpdate(obj, cur)
		}
	case statusWrite:
		if res.PrepareForStatusUpdate != nil {
			res.PrepareForStatusUpdate(obj, cur)
		}
	case subresourceWrite:
		sub, ok := res.Subresource(req.subresource)
		if !ok {
			return fmt.Errorf("%s has no subresource %q", res.GVR.Resource, req.subresource)
		}
		sub.PrepareForUpdate(obj, cur)
	}
	if kind == mainWrite && !equalField(obj, cur, "Spec") {
		m.SetGeneration(c.GetGeneration() + 1)
	}
	return nil
}

// copyField sets dst.<name> to a copy of src.<name> when both have it.
// Custom resources have a status and, for this purpose, everything else
// outside metadata is their "Spec".
func copyField(dst, src runtime.Object, name string) {
	if du, ok := dst.(*unstructured.Unstructured); ok {
		su := src.(*unstructured.Unstructured)
		for _, k := range customFields(du, su, name) {
			if v, ok := su.Object[k]; ok {
				du.Object[k] = runtime.DeepCopyJSONValue(v)
			} else {
				delete(du.Object, k)
			}
		}
		return
	}
	d := reflect.ValueOf(dst).Elem().FieldByName(name)
	sv := reflect.ValueOf(src).Elem().FieldByName(name)
	if d.IsValid() && sv.IsValid() && d.CanSet() {
		d.Set(reflect.ValueOf(deepCopyValue(sv)))
	}
}

// customFields returns the top-level keys of two custom resources that
// make up field name: "status", or for "Spec" every key but apiVersion,
// kind, metadata and status.
func customFields(a, b *unstructured.Unstructured, name string) []string {
	if name != "Spec" {
		return []string{jsonName(name)}
	}
	var keys []string
	for _, o := range []map[string]any{a.Object, b.Object} {
		for k := range o {
			switch k {
			case "apiVersion", "kind", "metadata", "status":
			default:
				if !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
	}
	return keys
}

func deepCopyValue(v reflect.Value) any {
	if dc := v.Addr().MethodByName("DeepCopy"); dc.IsValid() {
		return dc.Call(nil)[0].Elem().Interface()
	}
	return v.Interface()
}

func equalField(a, b runtime.Object, name string) bool {
	if au, ok := a.(*unstructured.Unstructured); ok {
		bu := b.(*unstructured.Unstructured)
		for _, k := range customFields(au, bu, name) {
			if !apiequality.Semantic.DeepEqual(au.Object[k], bu.Object[k]) {
				return false
			}
		}
		return true
	}
	av := reflect.ValueOf(a).Elem().FieldByName(name)
	bv := reflect.ValueOf(b).Elem().FieldByName(name)
	if !av.IsValid() || !bv.IsValid() {
		return true
	}
	return apiequality.Semantic.DeepEqual(av.Interface(), bv.Interface())
}

// updateWith runs a read-modify-write where modify builds the new object
// from a private copy of the current one, then defaults, admits and
// validates it. The write's field ownership is recorded unless applied
// (an apply's modify records it itself).
func (s *Server) updateWith(ctx context.Context, r *http.Request, req *request, kind writeKind, applied bool, modify func(cur runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	var dry, stored runtime.Object
	finish := s.startServiceWrite(req, dryRun(r))
	defer func() { finish(ctx, stored) }()
	updated, err := s.store.Update(ctx, req.key(), nil, func(cur runtime.Object) (runtime.Object, error) {
		obj, err := modify(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		if err := s.prepareUpdate(req, obj, cur, kind); err != nil {
			return nil, err
		}
		if !applied {
			if obj, err = s.track(r, req, cur, obj); err != nil {
				return nil, err
			}
		}
		if err := s.admitUpdate(ctx, req, obj, cur); err != nil {
			return nil, err
		}
		m, _ := meta.Accessor(obj)
		if errs := s.validate(ctx, req, obj, cur, kind); len(errs) > 0 {
			return nil, invalid(req, m.GetName(), errs)
		}
		switch kind {
		case mainWrite:
			if err := s.admitKind(ctx, req, obj, cur); err != nil {
				return nil, err
			}
		case statusWrite, subresourceWrite:
			if err := s.admitSubresource(ctx, req, obj, cur); err != nil {
				return nil, err
			}
		}
		if dryRun(r) {
			dry = obj
			return nil, errDryRun
		}
		return obj, nil
	})
	if errors.Is(err, errDryRun) {
		return dry, nil
	}
	if err != nil {
		return nil, err
	}
	stored = updated
	obj, _, err := s.finishDeletion(ctx, req, updated)
	return obj, err
}

var errDryRun = errors.New("dry run")

func (s *Server) update(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request, kind writeKind) error {
	obj, m, err := s.decodeObject(w, r, req)
	if err != nil {
		return err
	}
	if m.GetName() != req.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), req.name))
	}
	updated, err := s.updateWith(ctx, r, req, kind, false, func(runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	})
	if err != nil {
		return err
	}
	return s.writeObject(w, r, http.StatusOK, req, updated)
}

// finishDeletion removes an object whose deletion has nothing left to wait
// for: deletionTimestamp set, no finalizers and no grace period running.
// gone reports that it was deleted.
func (s *Server) finishDeletion(ctx context.Context, req *request, obj runtime.Object) (out runtime.Object, gone bool, err error) {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil || !s.deletable(obj, m) {
		return obj, false, err
	}
	deleted, err := s.store.Delete(ctx, req.key(), &storage.Preconditions{UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()}, nil)
	if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
		return obj, false, nil // changed again meanwhile: the next writer decides
	}
	if err == nil {
		s.releaseService(ctx, deleted)
	}
	return deleted, err == nil, err
}

// deletable: nothing holds the object's deletion back.
func (s *Server) deletable(obj runtime.Object, m metav1.Object) bool {
	if len(m.GetFinalizers()) > 0 {
		return false
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false
	}
	return len(namespaceFinalizers(obj)) == 0
}
