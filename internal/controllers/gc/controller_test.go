package gc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"wharf.dev/wharf/internal/testwait"
)

func TestController(t *testing.T) {
	deploy := obj{gvr: deployGVR, ns: "a", name: "d", uid: "d"}
	rs := obj{gvr: rsGVR, ns: "a", name: "rs", uid: "rs"}
	rs2 := obj{gvr: rsGVR, ns: "a", name: "rs2", uid: "rs2"}
	widget := obj{gvr: widgetGVR, name: "w", uid: "w"}
	pod := func(name string, owners ...obj) obj {
		o := obj{gvr: podGVR, ns: "a", name: name, uid: types.UID("uid-" + name)}
		for _, ow := range owners {
			o.owners = append(o.owners, ow.ref(true))
		}
		return o
	}
	rsOf := func(o obj, owner obj) obj { o.owners = append(o.owners, owner.ref(true)); return o }

	tests := []struct {
		name    string
		objects []obj
		// del, when set, deletes this object with policy after the controller started.
		del    *obj
		policy metav1.DeletionPropagation
		want   []string
	}{
		{
			name:    "owner gone: dependent deleted, live owner keeps its own",
			objects: []obj{rs, pod("orphaned", rs2), pod("kept", rs)},
			want: []string{
				"pods a/kept owners=[rs] fins=[]",
				"replicasets a/rs owners=[] fins=[]",
			},
		},
		{
			name:    "owner deleted while running: background cascade through two levels",
			objects: []obj{deploy, rsOf(rs, deploy), pod("p1", rs), pod("p2", rs)},
			del:     &deploy,
			policy:  metav1.DeletePropagationBackground,
			want:    nil,
		},
		{
			name:    "two owners, one gone: dangling reference removed",
			objects: []obj{rs, pod("p", rs, rs2)},
			want: []string{
				"pods a/p owners=[rs] fins=[]",
				"replicasets a/rs owners=[] fins=[]",
			},
		},
		{
			name:    "foreground: dependents first, then the owner",
			objects: []obj{rs, pod("p1", rs), pod("p2", rs), pod("other", rs2), rs2},
			del:     &rs,
			policy:  metav1.DeletePropagationForeground,
			want: []string{
				"pods a/other owners=[rs2] fins=[]",
				"replicasets a/rs2 owners=[] fins=[]",
			},
		},
		{
			name:    "foreground through two levels",
			objects: []obj{deploy, rsOf(rs, deploy), pod("p1", rs)},
			del:     &deploy,
			policy:  metav1.DeletePropagationForeground,
			want:    nil,
		},
		{
			name:    "orphan: dependents lose the reference and stay",
			objects: []obj{rs, pod("p1", rs), pod("p2", rs, rs2), rs2},
			del:     &rs,
			policy:  metav1.DeletePropagationOrphan,
			want: []string{
				"pods a/p1 owners=[] fins=[]",
				"pods a/p2 owners=[rs2] fins=[]",
				"replicasets a/rs2 owners=[] fins=[]",
			},
		},
		{
			name:    "restart mid-foreground: owner already waiting",
			objects: []obj{{gvr: rsGVR, ns: "a", name: "rs", uid: "rs", deleting: true, finalizers: []string{metav1.FinalizerDeleteDependents}}, pod("p1", rs)},
			want:    nil,
		},
		{
			name:    "cluster-scoped owner: alive keeps, gone deletes",
			objects: []obj{widget, pod("kept", widget), pod("gone", obj{gvr: widgetGVR, name: "w2", uid: "w2"})},
			want: []string{
				"pods a/kept owners=[w] fins=[]",
				"widgets /w owners=[] fins=[]",
			},
		},
		{
			name: "namespaced owner in another namespace does not count",
			objects: []obj{
				{gvr: rsGVR, ns: "b", name: "rs", uid: "rs"},
				pod("p", rs), // in namespace a, naming rs whose uid lives in b
			},
			want: []string{"replicasets b/rs owners=[] fins=[]"},
		},
		{
			name:    "owner recreated with a new uid: dependent of the old one deleted",
			objects: []obj{{gvr: rsGVR, ns: "a", name: "rs", uid: "rs-new"}, pod("p", rs)},
			want:    []string{"replicasets a/rs owners=[] fins=[]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t)
			for _, o := range tt.objects {
				if err := srv.Tracker().Create(o.gvr, o.meta(), o.ns); err != nil {
					t.Fatal(err)
				}
			}
			startController(t, srv, testResources)
			if tt.del != nil {
				err := srv.Resource(tt.del.gvr).Namespace(tt.del.ns).Delete(t.Context(), tt.del.name,
					metav1.DeleteOptions{PropagationPolicy: &tt.policy})
				if err != nil {
					t.Fatalf("delete %s: %v", tt.del.name, err)
				}
			}
			var diff string
			testwait.For(t, "objects as wanted", func() (bool, string) {
				diff = cmp.Diff(tt.want, state(t, srv))
				return diff == "", "(-want +got):\n" + diff
			})
		})
	}
}

func startController(t *testing.T, srv *fake.FakeMetadataClient, resources []Resource) *Controller {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := New(logger, srv, resources)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 2) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return c
}

// TestSetResources adds a resource at run time (a custom resource definition
// established) and removes it again.
func TestSetResources(t *testing.T) {
	base := testResources[:3] // deployments, replica sets, pods
	withGadgets := append(slices.Clone(base), Resource{GVR: gadgetGVR, Kind: "Gadget", Namespaced: true})
	rs := obj{gvr: rsGVR, ns: "a", name: "rs", uid: "rs"}
	rs2 := obj{gvr: rsGVR, ns: "a", name: "rs2", uid: "rs2"} // never created
	gadget := func(name string, owners ...obj) obj {
		o := obj{gvr: gadgetGVR, ns: "a", name: name, uid: types.UID("uid-" + name)}
		for _, ow := range owners {
			o.owners = append(o.owners, ow.ref(true))
		}
		return o
	}
	pod := func(name string, owner obj) obj {
		return obj{gvr: podGVR, ns: "a", name: name, uid: types.UID("uid-" + name), owners: []metav1.OwnerReference{owner.ref(true)}}
	}
	g := gadget("g", rs)
	srv := newFakeServer(t)
	for _, o := range []obj{
		rs, g,
		gadget("orphan", rs2),     // owner gone: collected once gadgets are watched
		pod("p", g),               // live gadget owner: stays
		pod("q", gadget("never")), // gadget owner gone: collected once the kind resolves
	} {
		if err := srv.Tracker().Create(o.gvr, o.meta(), o.ns); err != nil {
			t.Fatal(err)
		}
	}
	c := startController(t, srv, base)
	want := func(what string, want []string) {
		t.Helper()
		testwait.For(t, what, func() (bool, string) {
			diff := cmp.Diff(want, state(t, srv))
			return diff == "", "(-want +got):\n" + diff
		})
	}

	// Gadgets are not served yet: an owner of that kind counts as alive.
	testwait.For(t, "pods checked", func() (bool, string) {
		_, p := c.graph.get("uid-p")
		_, q := c.graph.get("uid-q")
		return p && q && c.queue.Len() == 0, ""
	})
	want("gadget owners kept while the kind is unknown", []string{
		"gadgets a/g owners=[rs] fins=[]",
		"gadgets a/orphan owners=[rs2] fins=[]",
		"pods a/p owners=[uid-g] fins=[]",
		"pods a/q owners=[uid-never] fins=[]",
		"replicasets a/rs owners=[] fins=[]",
	})

	c.SetResources(withGadgets)
	kept := []string{
		"gadgets a/g owners=[rs] fins=[]",
		"pods a/p owners=[uid-g] fins=[]",
		"replicasets a/rs owners=[] fins=[]",
	}
	want("gadgets and pods with gone owners collected", kept)

	// A new gadget is seen as it comes.
	if err := srv.Tracker().Create(gadgetGVR, gadget("late", rs2).meta(), "a"); err != nil {
		t.Fatal(err)
	}
	want("a gadget created later collected", kept)

	// Gadgets no longer served: their informer stops and their nodes go,
	// but the kind still resolves, to a live read (here the fake still
	// has the gadget g, so p stays; a server would answer 404).
	c.SetResources(base)
	c.mu.RLock()
	_, watched := c.watches[gadgetGVR]
	c.mu.RUnlock()
	if _, seen := c.graph.get("uid-g"); watched || seen {
		t.Fatalf("after removal: watched %v, gadget g in graph %v", watched, seen)
	}
	if err := srv.Tracker().Create(podGVR, pod("r", gadget("gone")).meta(), "a"); err != nil {
		t.Fatal(err)
	}
	want("pod whose owner's kind is no longer served collected", kept)
}

// TestOwnerResourceNotServed: a 404 for the owner's resource (not for the
// owner) while its kind still counts as served means the kinds are stale,
// not that the owner is gone: the dependent waits. Once the kind is no
// longer served, the same answer means the owner is gone.
func TestOwnerResourceNotServed(t *testing.T) {
	srv := newFakeServer(t)
	var gets atomic.Int32
	srv.PrependReactor("get", "gadgets", func(clienttesting.Action) (bool, runtime.Object, error) {
		gets.Add(1)
		return true, nil, apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "", "the server could not find the requested resource", 0, false)
	})
	gone := obj{gvr: gadgetGVR, ns: "a", name: "gone", uid: "gone"}
	p := obj{gvr: podGVR, ns: "a", name: "p", uid: "p", owners: []metav1.OwnerReference{gone.ref(true)}}
	if err := srv.Tracker().Create(podGVR, p.meta(), "a"); err != nil {
		t.Fatal(err)
	}
	c := startController(t, srv, testResources)
	testwait.For(t, "the owner read again", func() (bool, string) {
		return gets.Load() >= 3, fmt.Sprint(gets.Load(), " reads")
	})
	if diff := cmp.Diff([]string{"pods a/p owners=[gone] fins=[]"}, state(t, srv)); diff != "" {
		t.Fatalf("dependent deleted on a 404 for its owner's resource (-want +got):\n%s", diff)
	}
	c.SetResources(slices.DeleteFunc(slices.Clone(testResources), func(r Resource) bool { return r.GVR == gadgetGVR }))
	testwait.For(t, "dependent collected once gadgets are no longer served", func() (bool, string) {
		got := state(t, srv)
		return len(got) == 0, fmt.Sprint(got)
	})
}
