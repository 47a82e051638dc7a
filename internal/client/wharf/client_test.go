package wharf_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/testserver"
)

func newClient(t *testing.T) *wharf.Client {
	t.Helper()
	s := testserver.Start(t, testserver.Service)
	c, err := wharf.NewForConfig(s.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	tpl, err := c.ClusterTemplates("default").Create(ctx, &wharfv1.ClusterTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "k8s-local"},
		Spec:       wharfv1.ClusterTemplateSpec{COE: "kubernetes", Labels: map[string]string{"auto_healing_enabled": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Spec.Provider != "local" || tpl.Spec.Network.PodCIDR != "10.244.0.0/16" {
		t.Errorf("template not defaulted: %+v", tpl.Spec)
	}

	clusters := c.Clusters("default")
	w, err := clusters.Watch(ctx, metav1.ListOptions{ResourceVersion: tpl.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cl, err := clusters.Create(ctx, &wharfv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "demo"},
		Spec:       wharfv1.ClusterSpec{Template: "k8s-local", NodeCount: 2},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Spec.MasterCount != 1 || cl.Spec.CreateTimeout.Duration != 10*time.Minute {
		t.Errorf("cluster not defaulted: %+v", cl.Spec)
	}
	if ev := <-w.ResultChan(); ev.Type != watch.Added || ev.Object.(*wharfv1.Cluster).Name != "demo" {
		t.Errorf("watch: %v %T", ev.Type, ev.Object)
	}

	cl.Status = wharfv1.ClusterStatus{
		Status: wharfv1.StatusCreateInProgress, Steps: []wharfv1.Step{{Name: "credentials", At: metav1.Now()}},
	}
	if cl, err = clusters.UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := <-w.ResultChan(); ev.Type != watch.Modified || ev.Object.(*wharfv1.Cluster).Status.Status != wharfv1.StatusCreateInProgress {
		t.Errorf("watch after status update: %v %+v", ev.Type, ev.Object)
	}
	got, err := clusters.Get(ctx, "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cl.Status, got.Status); diff != "" {
		t.Errorf("status (-written +read):\n%s", diff)
	}
	list, err := c.Clusters("").List(ctx, metav1.ListOptions{FieldSelector: "status.status=CREATE_IN_PROGRESS"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list by status: %v, %v", list, err)
	}

	// Being created: not deleted (409) until the controller is done.
	if err := clusters.Delete(ctx, "demo", metav1.DeleteOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("delete while CREATE_IN_PROGRESS: %v, want a conflict", err)
	}
	got.Status.Status, got.Status.StatusReason = wharfv1.StatusCreateFailed, "test"
	if _, err := clusters.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	patched, err := clusters.Patch(ctx, "demo", types.MergePatchType, []byte(`{"spec":{"nodeCount":3}}`), metav1.PatchOptions{})
	if err != nil || patched.Spec.NodeCount != 3 || patched.Generation != 2 {
		t.Fatalf("patch: %v (generation %d), %v", patched.Spec, patched.Generation, err)
	}
	if err := clusters.Delete(ctx, "demo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clusters.Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}

func TestNodeGroupInformer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newClient(t)
	if _, err := c.ClusterTemplates("default").Create(ctx, &wharfv1.ClusterTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "t"}, Spec: wharfv1.ClusterTemplateSpec{COE: "kubernetes"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := c.Clusters("default").Create(ctx, &wharfv1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: wharfv1.ClusterSpec{Template: "t"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"default-worker", "gpu"} {
			if _, err := c.NodeGroups("default").Create(ctx, &wharfv1.NodeGroup{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-" + g},
				Spec:       wharfv1.NodeGroupSpec{Cluster: name, NodeCount: 1},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	inf := c.NodeGroupInformer("", 0)
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	objs, err := inf.GetIndexer().ByIndex(wharf.ClusterIndex, "default/b")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.(*wharfv1.NodeGroup).Name)
	}
	if len(names) != 2 || names[0][:2] != "b-" || names[1][:2] != "b-" {
		t.Errorf("groups of cluster b: %v", names)
	}
}
