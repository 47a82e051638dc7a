package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// handleStatus serves {resource}/{name}/status: reads return the whole
// object, writes change status only.
func (s *Server) handleStatus(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if !req.res.HasStatus || req.name == "" {
		return errNotFoundPath(r.URL.Path)
	}
	switch req.verb {
	case "get":
		return s.get(ctx, w, r, req)
	case "update":
		return s.update(ctx, w, r, req, statusWrite)
	case "patch":
		return s.patch(ctx, w, r, req, statusWrite)
	}
	return errMethod(r.Method, req)
}

// handleSubresource serves a kind's own subresources (Resource.Subresources,
// such as certificatesigningrequests/{name}/approval) as /status is served.
func (s *Server) handleSubresource(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.name == "" {
		return errNotFoundPath(r.URL.Path)
	}
	switch req.verb {
	case "get":
		return s.get(ctx, w, r, req)
	case "update":
		return s.update(ctx, w, r, req, subresourceWrite)
	case "patch":
		return s.patch(ctx, w, r, req, subresourceWrite)
	}
	return errMethod(r.Method, req)
}

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

func (s *Server) scaleOf(req *request, obj runtime.Object) *autoscalingv1.Scale {
	m, _ := meta.Accessor(obj)
	spec, status, selector := req.res.Scale.Get(obj)
	sc := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}
	sc.SetGroupVersionKind(scaleGVK)
	return sc
}

// handleScale serves deployments/{name}/scale and replicasets/{name}/scale.
func (s *Server) handleScale(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.res.Scale == nil || req.name == "" {
		return errNotFoundPath(r.URL.Path)
	}
	var scaleReq *autoscalingv1.Scale
	var pt types.PatchType
	var patch []byte
	switch req.verb {
	case "get":
		obj, err := s.store.Get(ctx, req.key(), r.URL.Query().Get("resourceVersion"))
		if err != nil {
			return err
		}
		return s.encodeAs(w, r, http.StatusOK, s.scaleOf(req, obj))
	case "update":
		data, err := readBody(r)
		if err != nil {
			return err
		}
		scaleReq = &autoscalingv1.Scale{}
		if err := s.decodeBody(w, r, data, scaleReq, scaleGVK); err != nil {
			return err
		}
	case "patch":
		t, err := patchType(r)
		if err != nil {
			return err
		}
		if patch, err = readBody(r); err != nil {
			return err
		}
		pt = t
	default:
		return errMethod(r.Method, req)
	}
	updated, err := s.updateWith(ctx, r, req, mainWrite, false, func(cur runtime.Object) (runtime.Object, error) {
		want := scaleReq
		if want == nil {
			want = &autoscalingv1.Scale{}
			if err := s.patchObject(w, r, pt, patch, s.scaleOf(req, cur), want); err != nil {
				return nil, err
			}
		}
		m, _ := meta.Accessor(cur)
		if rv := want.ResourceVersion; rv != "" && rv != m.GetResourceVersion() {
			return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewBadRequest("spec.replicas: must be greater than or equal to 0, got " + strconv.Itoa(int(want.Spec.Replicas)))
		}
		req.res.Scale.SetReplicas(cur, want.Spec.Replicas)
		return cur, nil
	})
	if err != nil {
		return err
	}
	return s.encodeAs(w, r, http.StatusOK, s.scaleOf(req, updated))
}

// encodeAs answers a subresource whose kind is not its resource's (a
// Scale, a TokenRequest) in the negotiated encoding.
func (s *Server) encodeAs(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) error {
	out, err := s.negotiate(r)
	if err != nil {
		return err
	}
	out.as, out.mediaType = asObject, out.info.MediaType
	return s.encode(w, code, out, obj)
}

// handleBinding serves pods/{name}/binding: the scheduler's assignment of a pod to a node.
func (s *Server) handleBinding(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.gvr.Resource != "pods" || req.verb != "create" {
		return errNotFoundPath(r.URL.Path)
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	b := &corev1.Binding{}
	if err := s.decodeBody(w, r, data, b, corev1.SchemeGroupVersion.WithKind("Binding")); err != nil {
		return err
	}
	if b.Target.Name == "" {
		return apierrors.NewBadRequest("binding target.name is required")
	}
	_, err = s.store.Update(ctx, req.key(), nil, func(obj runtime.Object) (runtime.Object, error) {
		pod := obj.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("the pod's uid is %s, not %s", pod.UID, b.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", req.name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("pod %s is already assigned to node %q", req.name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	})
	if err != nil {
		return err
	}
	st := &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}
	st.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Status"))
	writeJSON(w, http.StatusCreated, st)
	return nil
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}

// handleFinalize serves namespaces/{name}/finalize: only spec.finalizers change.
func (s *Server) handleFinalize(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.gvr.Resource != "namespaces" || req.verb != "update" {
		return errNotFoundPath(r.URL.Path)
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	want := &corev1.Namespace{}
	if err := s.decodeBody(w, r, data, want, corev1.SchemeGroupVersion.WithKind("Namespace")); err != nil {
		return err
	}
	updated, err := s.updateWith(ctx, r, req, finalizeWrite, false, func(cur runtime.Object) (runtime.Object, error) {
		ns := cur.(*corev1.Namespace)
		if want.ResourceVersion != "" && want.ResourceVersion != ns.ResourceVersion {
			return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		ns.Spec.Finalizers = want.Spec.Finalizers
		return ns, nil
	})
	if err != nil {
		return err
	}
	return s.writeObject(w, r, http.StatusOK, req, updated)
}
