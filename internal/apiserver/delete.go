package apiserver

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"wharf.dev/wharf/internal/storage"
)

// immortalNamespaces may not be deleted.
var immortalNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// deleteOptions reads DeleteOptions from the body (if any) and the query.
func (s *Server) deleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		info, _ := s.serializerFor("application/json")
		if ct := r.Header.Get("Content-Type"); ct != "" {
			var ok bool
			mt, _, _ := mime.ParseMediaType(ct)
			if info, ok = s.serializerFor(mt); !ok {
				return nil, unsupportedMediaType(ct)
			}
		}
		if _, _, err := info.Serializer.Decode(data, nil, opts); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
		}
	}
	q := r.URL.Query()
	if g := q.Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", g))
		}
		opts.GracePeriodSeconds = &n
	}
	if p := q.Get("propagationPolicy"); p != "" {
		pp := metav1.DeletionPropagation(p)
		opts.PropagationPolicy = &pp
	}
	if o := q.Get("orphanDependents"); o != "" {
		b := o == "true"
		opts.OrphanDependents = &b //nolint:staticcheck // still sent by old clients
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	return opts, nil
}

// policyFinalizer returns the finalizer a propagation policy needs ("" none).
func policyFinalizer(opts *metav1.DeleteOptions) (string, error) {
	if opts.OrphanDependents != nil && opts.PropagationPolicy != nil { //nolint:staticcheck
		return "", apierrors.NewBadRequest("orphanDependents and propagationPolicy are mutually exclusive")
	}
	if opts.OrphanDependents != nil { //nolint:staticcheck
		if *opts.OrphanDependents { //nolint:staticcheck
			return metav1.FinalizerOrphanDependents, nil
		}
		return "", nil
	}
	if opts.PropagationPolicy == nil {
		return "", nil
	}
	switch *opts.PropagationPolicy {
	case metav1.DeletePropagationOrphan:
		return metav1.FinalizerOrphanDependents, nil
	case metav1.DeletePropagationForeground:
		return metav1.FinalizerDeleteDependents, nil
	case metav1.DeletePropagationBackground:
		return "", nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("unsupported propagationPolicy %q: use Orphan, Background or Foreground", *opts.PropagationPolicy))
}

// gracePeriod returns how long obj's deletion waits (pods only) given the options.
func gracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	// Nothing runs an unscheduled or finished pod: it goes at once.
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if opts.GracePeriodSeconds != nil {
		return *opts.GracePeriodSeconds
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

func (s *Server) delete(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		return err
	}
	obj, pending, err := s.deleteObject(ctx, r, req, opts)
	if err != nil {
		return err
	}
	// Like Kubernetes, return the object while its deletion is pending (and
	// always for pods); a Status once it is gone.
	if pending || req.gvr.Resource == "pods" {
		return s.writeObject(w, r, http.StatusOK, req, obj)
	}
	m, _ := meta.Accessor(obj)
	st := &metav1.Status{Status: metav1.StatusSuccess, Details: &metav1.StatusDetails{
		Name: req.name, Group: req.gvr.Group, Kind: req.gvr.Resource, UID: m.GetUID(),
	}}
	st.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Status"))
	writeJSON(w, http.StatusOK, st)
	return nil
}

// deleteObject deletes or starts deleting one object; pending reports that
// it still exists (grace period or finalizers).
func (s *Server) deleteObject(ctx context.Context, r *http.Request, req *request, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if req.gvr.Resource == "namespaces" && immortalNamespaces[req.name] {
		return nil, false, apierrors.NewForbidden(req.gvr.GroupResource(), req.name, errors.New("this namespace may not be deleted"))
	}
	finalizer, err := policyFinalizer(opts)
	if err != nil {
		return nil, false, err
	}
	// A DeleteOptions body (or an eviction's) may ask for a dry run too.
	dry := dryRun(r) || isDryRun(opts)
	var pre *storage.Preconditions
	if p := opts.Preconditions; p != nil {
		pre = &storage.Preconditions{}
		if p.UID != nil {
			pre.UID = *p.UID
		}
		if p.ResourceVersion != nil {
			pre.ResourceVersion = *p.ResourceVersion
		}
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.store.Get(ctx, req.key(), "")
		if err != nil {
			return nil, false, err
		}
		if err := pre.Check(req.key(), cur); err != nil {
			return nil, false, err
		}
		m, _ := meta.Accessor(cur)
		if v := req.res.ValidateDelete; v != nil && m.GetDeletionTimestamp() == nil {
			if err := v(ctx, cur, storeObjects{s}); err != nil {
				return nil, false, err
			}
		}
		grace := gracePeriod(cur, opts)
		finalizers := m.GetFinalizers()
		if finalizer != "" && !slices.Contains(finalizers, finalizer) {
			finalizers = append(slices.Clone(finalizers), finalizer)
		}
		wait := len(finalizers) > 0 || grace > 0 || len(namespaceFinalizers(cur)) > 0
		if m.GetDeletionTimestamp() != nil {
			// Already being deleted: a shorter grace period or a new
			// finalizer may still change how it ends.
			old := m.GetDeletionGracePeriodSeconds()
			shorter := old != nil && grace < *old
			if !shorter && len(finalizers) == len(m.GetFinalizers()) {
				return cur, true, nil
			}
		} else if !wait {
			if dry {
				return cur, false, nil
			}
			deleted, err := s.store.Delete(ctx, req.key(), &storage.Preconditions{UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()}, nil)
			if errors.Is(err, storage.ErrConflict) && attempt < 10 {
				continue // changed since we looked: decide again
			}
			if err == nil {
				s.releaseService(ctx, deleted)
			}
			return deleted, false, err
		}
		if dry {
			return cur, true, nil
		}
		updated, err := s.store.Update(ctx, req.key(), &storage.Preconditions{UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()}, func(obj runtime.Object) (runtime.Object, error) {
			om, _ := meta.Accessor(obj)
			// Pods are deleted at deletionTimestamp; a shorter grace period moves it earlier.
			at := metav1.NewTime(time.Now().Add(time.Duration(grace) * time.Second))
			if old := om.GetDeletionTimestamp(); old == nil || at.Before(old) {
				om.SetDeletionTimestamp(&at)
			}
			om.SetDeletionGracePeriodSeconds(&grace)
			om.SetFinalizers(finalizers)
			om.SetGeneration(om.GetGeneration() + 1)
			if ns, ok := obj.(*corev1.Namespace); ok {
				ns.Status.Phase = corev1.NamespaceTerminating
			}
			return obj, nil
		})
		if errors.Is(err, storage.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		final, gone, err := s.finishDeletion(ctx, req, updated)
		return final, !gone, err
	}
}

// namespaceFinalizers returns a namespace's spec.finalizers (nil for other kinds).
func namespaceFinalizers(obj runtime.Object) []corev1.FinalizerName {
	if ns, ok := obj.(*corev1.Namespace); ok {
		return ns.Spec.Finalizers
	}
	return nil
}

func (s *Server) deleteCollection(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		return err
	}
	pred, err := s.predicate(req, r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.store.List(ctx, req.prefix(), storage.ListOptions{Predicate: pred})
	if err != nil {
		return err
	}
	for _, obj := range page.Items {
		m, _ := meta.Accessor(obj)
		one := *req
		one.name, one.namespace = m.GetName(), m.GetNamespace()
		if _, _, err := s.deleteObject(ctx, r, &one, opts); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	st := &metav1.Status{Status: metav1.StatusSuccess}
	st.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Status"))
	writeJSON(w, http.StatusOK, st)
	return nil
}
