package controllerutil

import (
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// EventHandler is an event handler for an informer.
type EventHandler struct {
	Informer cache.SharedIndexInformer
	Handler  cache.ResourceEventHandler
}

// AddEventHandlers adds each handler to its informer and returns the
// registrations' HasSynced, for Run to wait on. A handler that cannot be
// added (its informer has stopped) is logged and left out.
func AddEventHandlers(log *slog.Logger, handlers ...EventHandler) []cache.InformerSynced {
	var synced []cache.InformerSynced
	for _, h := range handlers {
		reg, err := h.Informer.AddEventHandler(h.Handler)
		if err != nil {
			log.Error("register event handler", "err", err)
			continue
		}
		synced = append(synced, reg.HasSynced)
	}
	return synced
}

// DeletedObject returns the object of an informer delete event: obj itself,
// or, when the delete was missed and found by a relist, the last state the
// informer knew, from its tombstone. That state may be stale, which is fine
// for finding owners. ok is false if obj holds no T.
func DeletedObject[T any](obj any) (T, bool) {
	if t, ok := obj.(T); ok {
		return t, true
	}
	tomb, ok := obj.(cache.DeletedFinalStateUnknown)
	if !ok {
		var zero T
		return zero, false
	}
	t, ok := tomb.Obj.(T)
	return t, ok
}

// ResolveControllerRef returns the object ref points to, read with get, if
// ref is of kind and the object is still the same one: an object recreated
// under the same name has another uid and controls nothing.
func ResolveControllerRef[T metav1.Object](ref *metav1.OwnerReference, kind string, get func(name string) (T, error)) (T, bool) {
	var zero T
	if ref.Kind != kind {
		return zero, false
	}
	obj, err := get(ref.Name)
	if err != nil || obj.GetUID() != ref.UID {
		return zero, false
	}
	return obj, true
}

// Selecting returns the candidates whose label selector, from selectorOf,
// matches lbls. An invalid or empty selector selects nothing: it would
// otherwise claim every object in the namespace.
func Selecting[T any](candidates []T, selectorOf func(T) *metav1.LabelSelector, lbls map[string]string) []T {
	var out []T
	for _, c := range candidates {
		sel, err := metav1.LabelSelectorAsSelector(selectorOf(c))
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(lbls)) {
			continue
		}
		out = append(out, c)
	}
	return out
}
