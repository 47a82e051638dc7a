package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"wharf.dev/wharf/internal/storage"
)

// toStatus maps an error to the API status a client sees. Storage errors
// carry their kind as a sentinel; everything unknown is a 500.
func toStatus(err error, req *request) *apierrors.StatusError {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se
	}
	var gr schema.GroupResource
	name := ""
	if req != nil {
		gr, name = req.gvr.GroupResource(), req.name
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	case errors.Is(err, storage.ErrGone):
		return apierrors.NewResourceExpired(err.Error())
	case errors.Is(err, storage.ErrBadContinue):
		return apierrors.NewBadRequest("invalid continue token")
	case errors.Is(err, storage.ErrTooLarge):
		se := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %v", err), 1)
		se.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
		return se
	case errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	return apierrors.NewInternalError(err)
}

// invalid is the 422 for a validation failure of a kind.
func invalid(req *request, name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(req.res.GroupVersionKind().GroupKind(), name, errs)
}

func errNotFoundPath(path string) error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "", fmt.Sprintf("the server could not find the requested resource (%s)", path), 0, false)
}

func errMethod(method string, req *request) error {
	return apierrors.NewMethodNotSupported(req.gvr.GroupResource(), method)
}

func metaCause(reason, namespace string) metav1.StatusCause {
	return metav1.StatusCause{Type: metav1.CauseType(reason), Field: "metadata.namespace", Message: "namespace " + namespace + " is being terminated"}
}

func unsupportedMediaType(contentType string) error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
		fmt.Sprintf("the body of the request was in an unknown format (%q); accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf", contentType), 0, false)
}
