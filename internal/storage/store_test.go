package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"wharf.dev/wharf/internal/storage"
)

func newStore(t *testing.T) (*storage.Store, *storage.Embedded) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{Dir: t.TempDir(), UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	s, err := storage.New(ctx, log, e.Client, storage.NewCodec(scheme))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); e.Close() })
	return s, e
}

func cm(name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string]string{"k": value}}
}

const prefix = "/registry/core/configmaps/"

func key(name string) string { return prefix + "ns/" + name }

func rv(t *testing.T, obj runtime.Object) string {
	t.Helper()
	return obj.(*corev1.ConfigMap).ResourceVersion
}

func TestCreateGetUpdateDelete(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	created, err := s.Create(ctx, key("a"), cm("a", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if rv(t, created) == "" {
		t.Fatal("created object has no resourceVersion")
	}
	if _, err := s.Create(ctx, key("a"), cm("a", "1")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	got, err := s.Get(ctx, key("a"), "")
	if err != nil {
		t.Fatal(err)
	}
	if rv(t, got) != rv(t, created) || got.(*corev1.ConfigMap).Data["k"] != "1" {
		t.Fatalf("get after create: %+v", got)
	}

	setValue := func(v string) storage.UpdateFunc {
		return func(cur runtime.Object) (runtime.Object, error) {
			cur.(*corev1.ConfigMap).Data["k"] = v
			return cur, nil
		}
	}
	updated, err := s.Update(ctx, key("a"), nil, setValue("2"))
	if err != nil {
		t.Fatal(err)
	}
	if rv(t, updated) == rv(t, created) {
		t.Fatal("update did not change resourceVersion")
	}
	same, err := s.Update(ctx, key("a"), nil, setValue("2"))
	if err != nil {
		t.Fatal(err)
	}
	if rv(t, same) != rv(t, updated) {
		t.Fatalf("unchanged update wrote: rv %s -> %s", rv(t, updated), rv(t, same))
	}
	_, err = s.Update(ctx, key("a"), &storage.Preconditions{ResourceVersion: rv(t, created)}, setValue("3"))
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale precondition: got %v, want ErrConflict", err)
	}
	if _, err := s.Update(ctx, key("missing"), nil, setValue("3")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update missing: got %v, want ErrNotFound", err)
	}

	deleted, err := s.Delete(ctx, key("a"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if deleted.(*corev1.ConfigMap).Data["k"] != "2" || rv(t, deleted) == rv(t, updated) {
		t.Fatalf("delete returned %+v", deleted)
	}
	if _, err := s.Get(ctx, key("a"), ""); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get after delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, key("a"), nil, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second delete: got %v, want ErrNotFound", err)
	}
}

func TestConcurrentUpdatesAllApply(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, key("n"), cm("n", "0")); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 20
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				_, err := s.Update(ctx, key("n"), nil, func(cur runtime.Object) (runtime.Object, error) {
					c := cur.(*corev1.ConfigMap)
					var n int
					fmt.Sscan(c.Data["k"], &n)
					c.Data["k"] = fmt.Sprint(n + 1)
					return c, nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, key("n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if v := got.(*corev1.ConfigMap).Data["k"]; v != fmt.Sprint(writers*each) {
		t.Fatalf("counter = %s, want %d", v, writers*each)
	}
}

func TestListPagesAreOneSnapshot(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Create(ctx, key(fmt.Sprintf("c%d", i)), cm(fmt.Sprintf("c%d", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.List(ctx, prefix, storage.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Continue == "" || page.RemainingItemCount == nil || *page.RemainingItemCount != 3 {
		t.Fatalf("first page: %d items, continue %q, remaining %v", len(page.Items), page.Continue, page.RemainingItemCount)
	}
	// Changes after the first page must not show in later pages.
	if _, err := s.Create(ctx, key("c9"), cm("c9", "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, key("c4"), nil, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range page.Items {
		names = append(names, o.(*corev1.ConfigMap).Name)
	}
	for page.Continue != "" {
		page, err = s.List(ctx, prefix, storage.ListOptions{Limit: 2, Continue: page.Continue})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Items {
			names = append(names, o.(*corev1.ConfigMap).Name)
		}
	}
	if fmt.Sprint(names) != "[c0 c1 c2 c3 c4]" {
		t.Fatalf("paged list = %v, want the snapshot [c0 c1 c2 c3 c4]", names)
	}
	all, err := s.List(ctx, prefix, storage.ListOptions{
		Predicate: func(o runtime.Object) bool { return o.(*corev1.ConfigMap).Name != "c0" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 4 { // c1 c2 c3 c9
		t.Fatalf("filtered list has %d items, want 4", len(all.Items))
	}
	if _, err := s.List(ctx, prefix, storage.ListOptions{Continue: "garbage"}); !errors.Is(err, storage.ErrBadContinue) {
		t.Fatalf("bad continue: got %v", err)
	}
}

func collect(t *testing.T, w watch.Interface, n int) []watch.Event {
	t.Helper()
	var out []watch.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("got %d of %d events: %v", len(out), n, out)
		}
	}
	return out
}

func summary(evs []watch.Event) string {
	var s string
	for _, ev := range evs {
		m, _ := ev.Object.(metav1.Object)
		s += fmt.Sprintf("%s:%s ", ev.Type, m.GetName())
	}
	return s
}

func TestWatchReplaysFromRevisionAndFilters(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := s.Create(ctx, key("a"), cm("a", "keep"))
	if err != nil {
		t.Fatal(err)
	}
	// Events after first: b created, a changed out of the selection, b deleted.
	if _, err := s.Create(ctx, key("b"), cm("b", "keep")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, key("a"), nil, func(o runtime.Object) (runtime.Object, error) {
		o.(*corev1.ConfigMap).Data["k"] = "drop"
		return o, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, key("b"), nil, nil); err != nil {
		t.Fatal(err)
	}
	keep := func(o runtime.Object) bool { return o.(*corev1.ConfigMap).Data["k"] == "keep" }
	w, err := s.Watch(ctx, prefix, storage.WatchOptions{ResourceVersion: rv(t, first), Predicate: keep})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got := summary(collect(t, w, 3))
	if want := "ADDED:b DELETED:a DELETED:b "; got != want {
		t.Fatalf("replayed %q, want %q", got, want)
	}
	// Live events follow the replay.
	if _, err := s.Create(ctx, key("c"), cm("c", "keep")); err != nil {
		t.Fatal(err)
	}
	if got := summary(collect(t, w, 1)); got != "ADDED:c " {
		t.Fatalf("live event %q", got)
	}
}

func TestWatchInitialEventsThenBookmark(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range []string{"a", "b"} {
		if _, err := s.Create(ctx, key(n), cm(n, "x")); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	w, err := s.Watch(ctx, prefix, storage.WatchOptions{
		SendInitialEvents: &yes, Bookmarks: true,
		NewObject: func() runtime.Object { return &corev1.ConfigMap{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	evs := collect(t, w, 3)
	if got := summary(evs[:2]); got != "ADDED:a ADDED:b " {
		t.Fatalf("initial events %q", got)
	}
	bm := evs[2]
	if bm.Type != watch.Bookmark || bm.Object.(*corev1.ConfigMap).Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("want the initial-events-end bookmark, got %v %+v", bm.Type, bm.Object)
	}
}

func TestCompactionMakesOldRevisionsGone(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	first, err := s.Create(ctx, key("a"), cm("a", "1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Create(ctx, key(fmt.Sprint("x", i)), cm(fmt.Sprint("x", i), "1")); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.List(ctx, prefix, storage.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, key("z"), cm("z", "1")); err != nil {
		t.Fatal(err)
	}
	// The cache moves past the page's revision: a consistent read waits
	// until it has applied etcd's current one (Create returns before).
	if _, err := s.List(ctx, prefix, storage.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	cur, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, prefix, storage.WatchOptions{ResourceVersion: rv(t, first)}); !errors.Is(err, storage.ErrGone) {
		t.Fatalf("watch from compacted revision: got %v, want ErrGone", err)
	}
	if _, err := s.List(ctx, prefix, storage.ListOptions{Limit: 1, Continue: page.Continue}); !errors.Is(err, storage.ErrGone) {
		t.Fatalf("continue from compacted revision: got %v, want ErrGone", err)
	}
}

// A watch from before the cache's history (e.g. after a restart) is served
// from etcd; it is Gone only once etcd compacted that revision.
func TestWatchOlderThanCacheResumesFromEtcd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	e, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{Dir: dir, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	scheme := runtime.NewScheme()
	corev1.AddToScheme(scheme)
	first, err := storage.New(ctx, log, e.Client, storage.NewCodec(scheme))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := first.Create(ctx, key("a"), cm("a", "1"))
	first.Create(ctx, key("b"), cm("b", "1"))
	first.Delete(ctx, key("a"), nil, nil)
	// A second store over the same etcd plays a restarted server: its cache starts now.
	second, err := storage.New(ctx, log, e.Client, storage.NewCodec(scheme))
	if err != nil {
		t.Fatal(err)
	}
	w, err := second.Watch(ctx, prefix, storage.WatchOptions{ResourceVersion: rv(t, a)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	second.Create(ctx, key("c"), cm("c", "1"))
	if got := summary(collect(t, w, 3)); got != "ADDED:b DELETED:a ADDED:c " {
		t.Fatalf("resumed watch %q", got)
	}
	cur, _ := second.Revision(ctx)
	if err := second.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	third, err := storage.New(ctx, log, e.Client, storage.NewCodec(scheme))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := third.Watch(ctx, prefix, storage.WatchOptions{ResourceVersion: rv(t, a)}); !errors.Is(err, storage.ErrGone) {
		t.Fatalf("watch from a compacted revision: %v, want ErrGone", err)
	}
}

// sendInitialEvents=false without a revision starts at the present.
func TestWatchFromNowWithoutInitialEvents(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Create(ctx, key("old"), cm("old", "1"))
	cur, _ := s.Revision(ctx)
	if err := s.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	no := false
	w, err := s.Watch(ctx, prefix, storage.WatchOptions{SendInitialEvents: &no})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	s.Create(ctx, key("new"), cm("new", "1"))
	if got := summary(collect(t, w, 1)); got != "ADDED:new " {
		t.Fatalf("events %q, want only the new object", got)
	}
}

// Custom resources' kinds are not in the scheme: they are stored as JSON
// and come back unstructured, with their kind and resourceVersion.
func TestUnstructuredObjects(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "ns"},
		"spec":     map[string]any{"size": int64(3)},
	}}
	const k = "/registry/example.com/widgets/ns/w"
	if _, err := s.Create(ctx, k, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, k, "")
	if err != nil {
		t.Fatal(err)
	}
	w, ok := got.(*unstructured.Unstructured)
	if !ok {
		t.Fatalf("got a %T, want *unstructured.Unstructured", got)
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 || w.GetKind() != "Widget" || w.GetResourceVersion() == "" {
		t.Errorf("stored widget came back as %v", w.Object)
	}
}
