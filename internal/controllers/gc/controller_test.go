package gc

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/metadata/metadatainformer"

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
			startController(t, srv)
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

func startController(t *testing.T, srv *fake.FakeMetadataClient) *Controller {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	factory := metadatainformer.NewSharedInformerFactory(srv, 0)
	c := New(logger, srv, factory, testResources)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 2) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return c
}
