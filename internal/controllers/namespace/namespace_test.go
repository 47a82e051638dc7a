package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

var (
	podGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	cmGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	rsGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	kinds  = map[schema.GroupVersionResource]string{podGVR: "Pod", cmGVR: "ConfigMap", rsGVR: "ReplicaSet"}
)

type obj struct {
	gvr        schema.GroupVersionResource
	ns, name   string
	finalizers []string
}

func (o obj) meta() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: o.gvr.GroupVersion().String(), Kind: kinds[o.gvr]},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: o.name, UID: types.UID(o.ns + "/" + o.name), Finalizers: o.finalizers},
	}
}

func namespace(name string, terminating bool) *v1.Namespace {
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NamespaceSpec{Finalizers: []v1.FinalizerName{v1.FinalizerKubernetes}}}
	ns.Status.Phase = v1.NamespaceActive
	if terminating {
		ns.DeletionTimestamp = ptr.To(metav1.Now())
		ns.Status.Phase = v1.NamespaceTerminating
	}
	return ns
}

// newMetaServer is the metadata fake plus the server rule this controller
// depends on: deleting an object with finalizers only marks it.
func newMetaServer(t *testing.T, objs []obj) *metafake.FakeMetadataClient {
	t.Helper()
	scheme := metafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := metafake.NewSimpleMetadataClient(scheme)
	tr := c.Tracker()
	c.PrependReactor("delete", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		da := a.(clienttesting.DeleteActionImpl)
		o, err := tr.Get(da.Resource, da.Namespace, da.Name)
		if err != nil {
			return true, nil, err
		}
		m := o.(*metav1.PartialObjectMetadata).DeepCopy()
		if len(m.Finalizers) == 0 {
			return false, nil, nil
		}
		if m.DeletionTimestamp == nil {
			m.DeletionTimestamp = ptr.To(metav1.Now())
		}
		return true, nil, tr.Update(da.Resource, m, da.Namespace)
	})
	for _, o := range objs {
		if err := tr.Create(o.gvr, o.meta(), o.ns); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func content(t *testing.T, c *metafake.FakeMetadataClient) []string {
	t.Helper()
	var out []string
	for gvr := range kinds {
		l, err := c.Resource(gvr).Namespace("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", gvr, err)
		}
		for _, m := range l.Items {
			out = append(out, fmt.Sprintf("%s %s/%s", gvr.Resource, m.Namespace, m.Name))
		}
	}
	sort.Strings(out)
	return out
}

// served is a DiscoverFunc whose answer a test changes at run time.
type served struct {
	mu        sync.Mutex
	resources []schema.GroupVersionResource
	err       error
}

func (s *served) set(err error, resources ...schema.GroupVersionResource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resources, s.err = resources, err
}

func (s *served) discover() ([]schema.GroupVersionResource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resources), s.err
}

func start(t *testing.T, client *k8sfake.Clientset, meta *metafake.FakeMetadataClient) {
	t.Helper()
	s := &served{}
	s.set(nil, podGVR, cmGVR, rsGVR)
	startWith(t, client, meta, s.discover)
}

func startWith(t *testing.T, client *k8sfake.Clientset, meta *metafake.FakeMetadataClient, discover DiscoverFunc) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(logger, client, meta, factory, discover, WithRetryBackoff(5*time.Millisecond, 50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 2) })
	t.Cleanup(func() { cancel(); wg.Wait(); factory.Shutdown() })
}

func finalizers(t *testing.T, client *k8sfake.Clientset, name string) []v1.FinalizerName {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace %s: %v", name, err)
	}
	return ns.Spec.Finalizers
}

func TestDeletesContentThenFinalizes(t *testing.T) {
	tests := []struct {
		name        string
		namespaces  []*v1.Namespace
		objects     []obj
		wantContent []string
		wantFinal   map[string][]v1.FinalizerName // namespace → spec.finalizers at the end
	}{
		{
			name:       "empty namespace is finalized",
			namespaces: []*v1.Namespace{namespace("gone", true)},
			wantFinal:  map[string][]v1.FinalizerName{"gone": {}},
		},
		{
			name:       "all resources deleted, other namespaces untouched",
			namespaces: []*v1.Namespace{namespace("gone", true), namespace("live", false)},
			objects: []obj{
				{gvr: podGVR, ns: "gone", name: "p1"}, {gvr: podGVR, ns: "gone", name: "p2"},
				{gvr: cmGVR, ns: "gone", name: "c"}, {gvr: rsGVR, ns: "gone", name: "rs"},
				{gvr: podGVR, ns: "live", name: "p1"}, {gvr: cmGVR, ns: "live", name: "c"},
			},
			wantContent: []string{"configmaps live/c", "pods live/p1"},
			wantFinal: map[string][]v1.FinalizerName{
				"gone": {},
				"live": {v1.FinalizerKubernetes},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			for _, ns := range tt.namespaces {
				objs = append(objs, ns)
			}
			client := k8sfake.NewClientset(objs...)
			meta := newMetaServer(t, tt.objects)
			start(t, client, meta)
			for ns, want := range tt.wantFinal {
				testwait.For(t, "finalizers of "+ns, func() (bool, string) {
					diff := cmp.Diff(want, finalizers(t, client, ns), cmpopts.EquateEmpty())
					return diff == "", diff
				})
			}
			if diff := cmp.Diff(tt.wantContent, content(t, meta)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWaitsWhileContentRemains(t *testing.T) {
	tests := []struct {
		name     string
		held     obj    // an object that stays after delete until released
		wantMsg  string // NamespaceContentRemaining message while waiting
		wantFins string // NamespaceFinalizersRemaining message while waiting
	}{
		{
			name:     "pod held by a finalizer",
			held:     obj{gvr: podGVR, ns: "gone", name: "p", finalizers: []string{"example.com/hold"}},
			wantMsg:  "Some resources are remaining: pods has 1 resource instances",
			wantFins: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
		},
		{
			name:     "replica set in foreground deletion",
			held:     obj{gvr: rsGVR, ns: "gone", name: "rs", finalizers: []string{metav1.FinalizerDeleteDependents}},
			wantMsg:  "Some resources are remaining: replicasets.apps has 1 resource instances",
			wantFins: "Some content in the namespace has finalizers remaining: foregroundDeletion in 1 resource instances",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := k8sfake.NewClientset(namespace("gone", true))
			meta := newMetaServer(t, []obj{tt.held, {gvr: cmGVR, ns: "gone", name: "c"}})
			start(t, client, meta)

			testwait.For(t, "conditions report remaining content", func() (bool, string) {
				ns, err := client.CoreV1().Namespaces().Get(context.Background(), "gone", metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				got := map[v1.NamespaceConditionType]string{}
				for _, c := range ns.Status.Conditions {
					got[c.Type] = c.Message
				}
				want := map[v1.NamespaceConditionType]string{
					v1.NamespaceDeletionDiscoveryFailure: "All resources successfully discovered",
					v1.NamespaceDeletionContentFailure:   "All content successfully deleted, may be waiting on finalization",
					v1.NamespaceContentRemaining:         tt.wantMsg,
					v1.NamespaceFinalizersRemaining:      tt.wantFins,
				}
				diff := cmp.Diff(want, got)
				return diff == "", diff
			})
			if diff := cmp.Diff([]v1.FinalizerName{v1.FinalizerKubernetes}, finalizers(t, client, "gone")); diff != "" {
				t.Fatalf("finalized while content remains (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tt.held.gvr.Resource + " gone/" + tt.held.name}, content(t, meta)); diff != "" {
				t.Fatalf("content while waiting (-want +got):\n%s", diff)
			}

			// Whoever holds the finalizer lets go; the object disappears.
			if err := meta.Tracker().Delete(tt.held.gvr, "gone", tt.held.name); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "namespace finalized", func() (bool, string) {
				f := finalizers(t, client, "gone")
				return len(f) == 0, fmt.Sprint(f)
			})
		})
	}
}

// TestDiscoversResourcesEachPass: resources served after start (custom
// resources) are emptied too, and a failed discovery holds finalization.
func TestDiscoversResourcesEachPass(t *testing.T) {
	conditions := func(t *testing.T, client *k8sfake.Clientset) map[v1.NamespaceConditionType]v1.ConditionStatus {
		t.Helper()
		ns, err := client.CoreV1().Namespaces().Get(context.Background(), "gone", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[v1.NamespaceConditionType]v1.ConditionStatus{}
		for _, c := range ns.Status.Conditions {
			out[c.Type] = c.Status
		}
		return out
	}
	objects := []obj{{gvr: podGVR, ns: "gone", name: "p"}, {gvr: rsGVR, ns: "gone", name: "rs"}, {gvr: cmGVR, ns: "live", name: "c"}}

	t.Run("resource served after start", func(t *testing.T) {
		client := k8sfake.NewClientset(namespace("gone", false), namespace("live", false))
		meta := newMetaServer(t, objects)
		s := &served{}
		s.set(nil, podGVR, cmGVR)
		startWith(t, client, meta, s.discover)
		s.set(nil, podGVR, cmGVR, rsGVR)
		if _, err := client.CoreV1().Namespaces().Update(context.Background(), namespace("gone", true), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "namespace finalized", func() (bool, string) {
			f := finalizers(t, client, "gone")
			return len(f) == 0, fmt.Sprint(f)
		})
		if diff := cmp.Diff([]string{"configmaps live/c"}, content(t, meta)); diff != "" {
			t.Errorf("content (-want +got):\n%s", diff)
		}
	})

	t.Run("discovery failure holds finalization", func(t *testing.T) {
		client := k8sfake.NewClientset(namespace("gone", true), namespace("live", false))
		meta := newMetaServer(t, objects)
		s := &served{}
		s.set(errors.New("apps/v1: unavailable"), podGVR, cmGVR) // partial
		startWith(t, client, meta, s.discover)
		testwait.For(t, "known resources emptied, discovery failure reported", func() (bool, string) {
			got := content(t, meta)
			conds := conditions(t, client)
			return slices.Equal(got, []string{"configmaps live/c", "replicasets gone/rs"}) &&
				conds[v1.NamespaceDeletionDiscoveryFailure] == v1.ConditionTrue, fmt.Sprint(got, conds)
		})
		if diff := cmp.Diff([]v1.FinalizerName{v1.FinalizerKubernetes}, finalizers(t, client, "gone")); diff != "" {
			t.Fatalf("finalized after a failed discovery (-want +got):\n%s", diff)
		}
		s.set(nil, podGVR, cmGVR, rsGVR)
		testwait.For(t, "namespace finalized", func() (bool, string) {
			f := finalizers(t, client, "gone")
			return len(f) == 0, fmt.Sprint(f)
		})
		if diff := cmp.Diff([]string{"configmaps live/c"}, content(t, meta)); diff != "" {
			t.Errorf("content (-want +got):\n%s", diff)
		}
	})
}
