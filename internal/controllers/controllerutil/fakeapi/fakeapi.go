// Package fakeapi makes client-go's fake clientset behave like the API
// server where Wharf's workload controllers depend on it, for their tests.
// The plain fake stores writes as sent; a real API server, for pods,
// replicasets, deployments, jobs, cronjobs and daemonsets:
//
//   - fills metadata.name from generateName, uid, creationTimestamp,
//     generation and resourceVersion on create, and resets status;
//   - rejects an update whose resourceVersion is stale (409 Conflict), which
//     is what keeps two writers (or a writer on a stale cache) from
//     overwriting each other;
//   - bumps generation when the spec changes;
//   - keeps status on a main-resource update, and spec and metadata on a
//     status update (like Wharf's API server; Kubernetes lets a Deployment
//     status write change annotations, a controller must not rely on it);
//   - applies patches to the stored object under the same rules, and rejects
//     a patch whose metadata.uid names another object (422 Invalid);
//   - deletes an object with finalizers only once they are all removed:
//     until then it stays, with a deletionTimestamp;
//   - optionally deletes pods gracefully: the first delete only sets
//     deletionTimestamp, as the kubelet, not the API server, removes them.
//
// Everything else (other resources, list, watch) is the plain fake.
package fakeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Options select optional API server behaviours.
type Options struct {
	// GracefulPodDeletion makes deleting a pod set its deletionTimestamp
	// instead of removing it; a test then plays the kubelet and removes it
	// with Finalize.
	GracefulPodDeletion bool
	// Now is the time creation and deletion timestamps are taken from
	// (default time.Now), for controllers tested on a fake clock.
	Now func() time.Time
}

var resources = map[string]bool{"pods": true, "replicasets": true, "deployments": true, "jobs": true, "cronjobs": true, "daemonsets": true}

type server struct {
	tracker k8stesting.ObjectTracker
	opts    Options

	mu  sync.Mutex
	rv  int64
	uid int64
}

// New returns an empty fake clientset whose pods, replicasets, daemonsets,
// deployments, jobs and cronjobs behave as described in the package
// comment.
func New(opts Options) *fake.Clientset {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cs := fake.NewSimpleClientset()
	s := &server{tracker: cs.Tracker(), opts: opts}
	cs.PrependReactor("*", "*", s.react)
	return cs
}

// PodsResource is the pods GroupVersionResource, for direct tracker access.
var PodsResource = v1.SchemeGroupVersion.WithResource("pods")

// Finalize ends the grace period of a pod that is being deleted gracefully,
// as the kubelet does once its containers stopped (a delete with grace
// period 0): the pod goes, or, if it still has finalizers, stays until they
// are removed.
func Finalize(cs *fake.Clientset, namespace, name string) error {
	opts := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	if err := cs.CoreV1().Pods(namespace).Delete(context.Background(), name, opts); err != nil {
		return fmt.Errorf("finalize pod %s/%s: %w", namespace, name, err)
	}
	return nil
}

func (s *server) react(action k8stesting.Action) (bool, runtime.Object, error) {
	gvr := action.GetResource()
	if !resources[gvr.Resource] {
		return false, nil, nil
	}
	ns := action.GetNamespace()
	sub := action.GetSubresource()
	if sub != "" && sub != "status" {
		return false, nil, nil
	}
	switch a := action.(type) {
	case k8stesting.CreateActionImpl:
		if sub != "" {
			return false, nil, nil
		}
		obj, err := s.create(gvr, ns, a.GetObject())
		return true, obj, err
	case k8stesting.UpdateActionImpl:
		obj, err := s.update(gvr, ns, a.GetObject(), sub == "status")
		return true, obj, err
	case k8stesting.PatchActionImpl:
		if a.GetPatchType() == types.ApplyPatchType {
			return false, nil, nil
		}
		obj, err := s.patch(gvr, ns, a.GetName(), a.GetPatchType(), a.GetPatch(), sub == "status")
		return true, obj, err
	case k8stesting.DeleteActionImpl:
		return true, nil, s.delete(gvr, ns, a.GetName(), a.GetDeleteOptions().GracePeriodSeconds)
	}
	return false, nil, nil
}

func (s *server) nextRV() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv++
	return fmt.Sprint(s.rv)
}

func (s *server) nextUID() types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uid++
	return types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", s.uid))
}

func (s *server) create(gvr schema.GroupVersionResource, ns string, in runtime.Object) (runtime.Object, error) {
	obj := in.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + rand.String(5))
	}
	m.SetUID(s.nextUID())
	// The API server stores times with second precision.
	m.SetCreationTimestamp(metav1.NewTime(s.opts.Now().Truncate(time.Second)))
	m.SetGeneration(1)
	m.SetResourceVersion(s.nextRV())
	status := reflect.ValueOf(obj).Elem().FieldByName("Status")
	status.Set(reflect.Zero(status.Type()))
	if pod, ok := obj.(*v1.Pod); ok {
		pod.Status.Phase = v1.PodPending
	}
	if err := s.tracker.Create(gvr, obj, ns); err != nil {
		return nil, err
	}
	return obj.DeepCopyObject(), nil
}

func (s *server) update(gvr schema.GroupVersionResource, ns string, in runtime.Object, status bool) (runtime.Object, error) {
	obj := in.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	stored, err := s.tracker.Get(gvr, ns, m.GetName())
	if err != nil {
		return nil, err
	}
	sm, err := meta.Accessor(stored)
	if err != nil {
		return nil, err
	}
	if rv := m.GetResourceVersion(); rv != "" && rv != sm.GetResourceVersion() {
		return nil, apierrors.NewConflict(gvr.GroupResource(), m.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	newV, oldV := reflect.ValueOf(obj).Elem(), reflect.ValueOf(stored).Elem()
	m.SetGeneration(sm.GetGeneration())
	if status {
		newV.FieldByName("Spec").Set(oldV.FieldByName("Spec"))
		stored := stored.DeepCopyObject()
		newV.FieldByName("ObjectMeta").Set(reflect.ValueOf(stored).Elem().FieldByName("ObjectMeta"))
	} else {
		newV.FieldByName("Status").Set(oldV.FieldByName("Status"))
		if !equality.Semantic.DeepEqual(newV.FieldByName("Spec").Interface(), oldV.FieldByName("Spec").Interface()) {
			m.SetGeneration(sm.GetGeneration() + 1)
		}
	}
	m.SetUID(sm.GetUID())
	m.SetCreationTimestamp(sm.GetCreationTimestamp())
	m.SetDeletionTimestamp(sm.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(sm.GetDeletionGracePeriodSeconds())
	m.SetResourceVersion(s.nextRV())
	if err := s.tracker.Update(gvr, obj, ns); err != nil {
		return nil, err
	}
	if deletable(m) {
		// The last finalizer is gone: the deletion completes.
		if err := s.tracker.Delete(gvr, ns, m.GetName()); err != nil {
			return nil, err
		}
	}
	return obj.DeepCopyObject(), nil
}

// deletable: a deletion has nothing left to wait for (no finalizer, no
// grace period running).
func deletable(m metav1.Object) bool {
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	g := m.GetDeletionGracePeriodSeconds()
	return g == nil || *g == 0
}

func (s *server) patch(gvr schema.GroupVersionResource, ns, name string, pt types.PatchType, patch []byte, status bool) (runtime.Object, error) {
	stored, err := s.tracker.Get(gvr, ns, name)
	if err != nil {
		return nil, err
	}
	old, err := json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		patched, err = p.Apply(old)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(old, patch)
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(old, patch, stored)
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("patch type %q not supported", pt))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	obj := reflect.New(reflect.TypeOf(stored).Elem()).Interface().(runtime.Object)
	if err := json.Unmarshal(patched, obj); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	m, _ := meta.Accessor(obj)
	sm, _ := meta.Accessor(stored)
	if m.GetUID() != sm.GetUID() {
		gk := schema.GroupKind{Group: gvr.Group, Kind: reflect.TypeOf(stored).Elem().Name()}
		return nil, apierrors.NewInvalid(gk, name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "uid"), m.GetUID(), "field is immutable"),
		})
	}
	return s.update(gvr, ns, obj, status)
}

func (s *server) delete(gvr schema.GroupVersionResource, ns, name string, gracePeriod *int64) error {
	stored, err := s.tracker.Get(gvr, ns, name)
	if err != nil {
		return err
	}
	obj := stored.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	grace := int64(0)
	if gvr.Resource == "pods" && s.opts.GracefulPodDeletion {
		grace = 30
		if gracePeriod != nil {
			grace = *gracePeriod
		}
	}
	if grace == 0 && len(m.GetFinalizers()) == 0 {
		return s.tracker.Delete(gvr, ns, name)
	}
	if old := m.GetDeletionTimestamp(); old != nil {
		// Already being deleted: only a shorter grace period changes it.
		if g := m.GetDeletionGracePeriodSeconds(); g == nil || *g <= grace {
			return nil
		}
	} else {
		now := metav1.NewTime(s.opts.Now().Truncate(time.Second))
		m.SetDeletionTimestamp(&now)
	}
	m.SetDeletionGracePeriodSeconds(&grace)
	m.SetResourceVersion(s.nextRV())
	return s.tracker.Update(gvr, obj, ns)
}
