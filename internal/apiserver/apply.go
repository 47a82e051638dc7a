package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"wharf.dev/wharf/internal/storage"
)

// track records a write other than an apply in obj's managedFields: the
// fields it changed from live become its manager's.
func (s *Server) track(r *http.Request, req *request, live, obj runtime.Object) (runtime.Object, error) {
	fm, err := s.fields.For(req.res, req.subresource)
	if err != nil {
		return nil, err
	}
	manager, err := managerName(r)
	if err != nil {
		return nil, err
	}
	s.ensureKind(live)
	s.ensureKind(obj)
	return fm.UpdateNoErrors(live, obj, manager), nil
}

// apply serves a server-side apply (application/apply-patch+yaml): the
// applied configuration is merged into the object by the field manager,
// which refuses to take fields another manager owns unless forced. An
// object that does not exist yet is created from it.
func (s *Server) apply(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request, kind writeKind, body []byte) error {
	q := r.URL.Query()
	manager := q.Get("fieldManager")
	if manager == "" {
		return apierrors.NewInvalid(patchOptionsKind, "", field.ErrorList{field.Required(field.NewPath("fieldManager"), "is required for apply patch")})
	}
	if _, err := managerName(r); err != nil {
		return err
	}
	force := false
	switch f := q.Get("force"); f {
	case "", "false":
	case "true":
		force = true
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("invalid force %q: want true or false", f))
	}
	patch := &unstructured.Unstructured{Object: map[string]any{}}
	if err := yaml.Unmarshal(body, &patch.Object); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	if patch.Object == nil {
		return apierrors.NewBadRequest("the request body is empty")
	}
	if err := s.checkApplied(r, req, patch); err != nil {
		return err
	}
	fm, err := s.fields.For(req.res, req.subresource)
	if err != nil {
		return err
	}
	merge := func(live runtime.Object) (runtime.Object, error) {
		s.ensureKind(live)
		out, err := fm.Apply(live, patch.DeepCopy(), manager, force)
		if err != nil {
			var se *apierrors.StatusError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return s.typed(req, out)
	}
	for range 3 {
		updated, err := s.updateWith(ctx, r, req, kind, true, merge)
		if !errors.Is(err, storage.ErrNotFound) || kind != mainWrite {
			if err != nil {
				return err
			}
			return s.writeObject(w, r, http.StatusOK, req, updated)
		}
		obj, err := merge(req.res.NewStored())
		if err != nil {
			return err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		if err := s.setNamespace(req, m); err != nil {
			return err
		}
		err = s.createObject(ctx, w, r, req, obj, true)
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// Created meanwhile by another writer: apply to that one.
	}
	return apierrors.NewConflict(req.gvr.GroupResource(), req.name, errors.New("the object kept changing between create and update; try again"))
}

// checkApplied checks that an applied configuration names the URL's kind,
// object and namespace.
func (s *Server) checkApplied(r *http.Request, req *request, patch *unstructured.Unstructured) error {
	want := req.res.GroupVersionKind()
	if got := patch.GroupVersionKind(); got != want {
		return apierrors.NewBadRequest(fmt.Sprintf("the applied configuration is a %s, this URL wants a %s", got, want))
	}
	if patch.GetName() != req.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", patch.GetName(), req.name))
	}
	if ns := patch.GetNamespace(); req.res.Namespaced && ns != "" && ns != req.namespace {
		return apierrors.NewBadRequest(fmt.Sprintf("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)", ns, req.namespace))
	}
	if mode := r.URL.Query().Get("fieldValidation"); mode == "Strict" {
		// Unknown fields are an error only when asked: the field
		// manager drops what the schema does not know.
		probe := req.res.New()
		if _, custom := probe.(*unstructured.Unstructured); !custom { // custom resources: pruned by their schema
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(patch.Object, probe, true); err != nil {
				return apierrors.NewBadRequest(err.Error())
			}
		}
	}
	return nil
}

// typed returns the field manager's result as the kind's Go type. The
// field manager hands built-in kinds back typed, in the version they are
// stored in (its hub); custom resources unstructured.
func (s *Server) typed(req *request, obj runtime.Object) (runtime.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	out := req.res.New()
	if _, custom := out.(*unstructured.Unstructured); custom {
		// The merge hands numbers back as float64 (the applied YAML
		// decodes so); the schema's integers are int64, as decoding a
		// request body gives them.
		data, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		u = &unstructured.Unstructured{}
		if err := utiljson.Unmarshal(data, &u.Object); err != nil {
			return nil, err
		}
		if req.res.Prune != nil {
			if _, err := req.res.Prune(u); err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
		}
		return u, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the applied object does not decode as a %s: %v", req.res.Kind, err))
	}
	s.ensureKind(out)
	return out, nil
}
