package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// applyPatch applies a patch of the given type to the JSON of an object.
// kind is an empty object of the kind, for strategic merge's list keys.
func applyPatch(patchType types.PatchType, original, patch []byte, kind runtime.Object) (out []byte, err error) {
	// The patch libraries panic on some malformed patches (e.g. a JSON
	// patch "replace" without a value at the root): that is bad input.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, apierrors.NewBadRequest(fmt.Sprintf("invalid %s: %v", patchType, r))
		}
	}()
	switch patchType {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid JSON patch: %v", err))
		}
		out, err := p.Apply(original)
		if err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", fmt.Sprintf("the JSON patch does not apply: %v", err), 0, false)
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid merge patch: %v", err))
		}
		return out, nil
	case types.StrategicMergePatchType:
		out, err := strategicpatch.StrategicMergePatch(original, patch, kind)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid strategic merge patch: %v", err))
		}
		return out, nil
	}
	return nil, unsupportedMediaType(string(patchType))
}

// patchType reads the patch type from Content-Type.
func patchType(r *http.Request) (types.PatchType, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", unsupportedMediaType(r.Header.Get("Content-Type"))
	}
	switch pt := types.PatchType(mt); pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
		return pt, nil
	}
	return "", unsupportedMediaType(mt)
}

// patchObject applies a request's patch to cur and decodes the result.
func (s *Server) patchObject(w http.ResponseWriter, r *http.Request, pt types.PatchType, patch []byte, cur runtime.Object, into runtime.Object) error {
	info, _ := s.serializerFor("application/json")
	var buf bytes.Buffer
	if err := info.Serializer.Encode(cur, &buf); err != nil {
		return err
	}
	patched, err := applyPatch(pt, buf.Bytes(), patch, into.DeepCopyObject())
	if err != nil {
		return err
	}
	gvk := cur.GetObjectKind().GroupVersionKind()
	return s.decodeWith(w, r, info, patched, into, gvk)
}

func (s *Server) patch(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request, kind writeKind) error {
	pt, err := patchType(r)
	if err != nil {
		return err
	}
	patch, err := readBody(r)
	if err != nil {
		return err
	}
	if pt == types.ApplyYAMLPatchType {
		return s.apply(ctx, w, r, req, kind, patch)
	}
	if _, custom := req.res.New().(*unstructured.Unstructured); custom && pt == types.StrategicMergePatchType {
		// Custom resources have no Go struct to carry merge keys.
		return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
			"strategic merge patch is not supported for custom resources; accepted: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml", 0, false)
	}
	updated, err := s.updateWith(ctx, r, req, kind, false, func(cur runtime.Object) (runtime.Object, error) {
		s.ensureKind(cur)
		// The patch is of the URL's version: applied to the object as
		// that version shows it.
		served, err := req.res.Served(cur)
		if err != nil {
			return nil, err
		}
		obj := req.res.New()
		if err := s.patchObject(w, r, pt, patch, served, obj); err != nil {
			return nil, err
		}
		if err := s.prune(w, r, req, obj); err != nil {
			return nil, err
		}
		if obj, err = req.res.Stored(obj); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return obj, nil
	})
	if err != nil {
		return err
	}
	return s.writeObject(w, r, http.StatusOK, req, updated)
}
