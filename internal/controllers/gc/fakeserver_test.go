package gc

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

var (
	deployGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	rsGVR     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	podGVR    = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	widgetGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	gadgetGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"}

	testResources = []Resource{
		{GVR: deployGVR, Kind: "Deployment", Namespaced: true},
		{GVR: rsGVR, Kind: "ReplicaSet", Namespaced: true},
		{GVR: podGVR, Kind: "Pod", Namespaced: true},
		{GVR: widgetGVR, Kind: "Widget", Namespaced: false}, // cluster-scoped
		{GVR: gadgetGVR, Kind: "Gadget", Namespaced: true},
	}
	kindOf = map[schema.GroupVersionResource]string{deployGVR: "Deployment", rsGVR: "ReplicaSet", podGVR: "Pod", widgetGVR: "Widget", gadgetGVR: "Gadget"}
)

// newFakeServer is the metadata fake plus the API server's deletion rules
// the collector relies on: DELETE with a propagation policy adds the
// matching finalizer, an object with finalizers only gets a
// deletionTimestamp, and it goes away once a patch empties its finalizers.
func newFakeServer(t *testing.T) *fake.FakeMetadataClient {
	t.Helper()
	scheme := fake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewSimpleMetadataClient(scheme)
	tr := c.Tracker()
	c.PrependReactor("delete", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		da := a.(clienttesting.DeleteActionImpl)
		obj, err := tr.Get(da.Resource, da.Namespace, da.Name)
		if err != nil {
			return true, nil, err
		}
		m := obj.(*metav1.PartialObjectMetadata).DeepCopy()
		opts := da.DeleteOptions
		if opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID != m.UID {
			return true, nil, apierrors.NewConflict(da.Resource.GroupResource(), da.Name, fmt.Errorf("uid precondition failed"))
		}
		if p := opts.PropagationPolicy; p != nil {
			switch *p {
			case metav1.DeletePropagationForeground:
				addFinalizer(m, metav1.FinalizerDeleteDependents)
			case metav1.DeletePropagationOrphan:
				addFinalizer(m, metav1.FinalizerOrphanDependents)
			}
		}
		if len(m.Finalizers) == 0 {
			return false, nil, nil // the default reactor removes it
		}
		if m.DeletionTimestamp == nil {
			m.DeletionTimestamp = ptr.To(metav1.Now())
		}
		return true, nil, tr.Update(da.Resource, m, da.Namespace)
	})
	c.PrependReactor("patch", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		_, obj, err := clienttesting.ObjectReaction(tr)(a)
		if err != nil {
			return true, nil, err
		}
		m := obj.(*metav1.PartialObjectMetadata)
		if m.DeletionTimestamp != nil && len(m.Finalizers) == 0 {
			pa := a.(clienttesting.PatchActionImpl)
			return true, obj, tr.Delete(pa.Resource, pa.Namespace, pa.Name)
		}
		return true, obj, nil
	})
	return c
}

func addFinalizer(m *metav1.PartialObjectMetadata, f string) {
	if !slices.Contains(m.Finalizers, f) {
		m.Finalizers = append(m.Finalizers, f)
	}
}

// obj is a test object: resource, namespace/name, uid, owners and finalizers.
type obj struct {
	gvr        schema.GroupVersionResource
	ns, name   string
	uid        types.UID
	owners     []metav1.OwnerReference
	finalizers []string
	deleting   bool
}

func (o obj) meta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: o.gvr.GroupVersion().String(), Kind: kindOf[o.gvr]},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: o.ns, Name: o.name, UID: o.uid,
			OwnerReferences: o.owners, Finalizers: o.finalizers,
		},
	}
	if o.deleting {
		m.DeletionTimestamp = ptr.To(metav1.Now())
	}
	return m
}

// ref is an ownerReference to o.
func (o obj) ref(block bool) metav1.OwnerReference {
	r := metav1.OwnerReference{APIVersion: o.gvr.GroupVersion().String(), Kind: kindOf[o.gvr], Name: o.name, UID: o.uid}
	if block {
		r.BlockOwnerDeletion = ptr.To(true)
	}
	return r
}

// state renders every stored object as "resource ns/name owners=[…] fins=[…]".
func state(t *testing.T, c *fake.FakeMetadataClient) []string {
	t.Helper()
	var out []string
	for _, r := range testResources {
		l, err := c.Resource(r.GVR).Namespace("").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", r.GVR, err)
		}
		for _, m := range l.Items {
			var owners []string
			for _, o := range m.OwnerReferences {
				owners = append(owners, string(o.UID))
			}
			out = append(out, fmt.Sprintf("%s %s/%s owners=[%s] fins=[%s]",
				r.GVR.Resource, m.Namespace, m.Name, strings.Join(owners, ","), strings.Join(m.Finalizers, ",")))
		}
	}
	sort.Strings(out)
	return out
}
