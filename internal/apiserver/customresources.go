package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"wharf.dev/wharf/internal/crd"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/storage"
)

// The definitions controller runs inside every API server: it follows the
// CustomResourceDefinitions in storage, sets their status (names accepted,
// established) as upstream's naming and establishing controllers do, and
// serves each established definition's versions: in the registry (so in
// discovery and the REST paths) and in the OpenAPI documents. A deleted
// definition's objects are deleted before it goes (its cleanup finalizer).

const crdPrefix = "/registry/apiextensions.k8s.io/customresourcedefinitions/"

// served is what the server serves of one definition.
type served struct {
	uid        string
	generation int64
	group      string
	plural     string
	kinds      []schema.GroupVersionKind
}

type definitionsController struct {
	s      *Server
	served map[string]*served // by definition name
}

// runDefinitions follows the definitions until ctx ends.
func (s *Server) runDefinitions(ctx context.Context) {
	d := &definitionsController{s: s, served: map[string]*served{}}
	for ctx.Err() == nil {
		if err := d.follow(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("following custom resource definitions", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (d *definitionsController) follow(ctx context.Context) error {
	initial := true
	w, err := d.s.store.Watch(ctx, crdPrefix, storage.WatchOptions{SendInitialEvents: &initial, Bookmarks: true,
		NewObject: func() runtime.Object { return &apiextv1.CustomResourceDefinition{} }})
	if err != nil {
		return err
	}
	defer w.Stop()
	// A definition's change can change its neighbours' (names freed or
	// taken): every event syncs all of them. They are few. While a
	// deleted definition's objects wait for their finalizers, it is
	// looked at again every second.
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errors.New("watch ended")
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("watch: %v", ev.Object)
			}
			if ev.Type == watch.Bookmark {
				continue
			}
		case <-retry.C:
			if !pending {
				continue
			}
		}
		err := d.syncAll(ctx)
		pending = errors.Is(err, errRetryLater)
		if err != nil && !pending {
			d.s.log.Warn("syncing custom resource definitions", "err", err)
		}
	}
}

func (d *definitionsController) syncAll(ctx context.Context) error {
	page, err := d.s.store.List(ctx, crdPrefix, storage.ListOptions{})
	if err != nil {
		return err
	}
	all := make([]*apiextv1.CustomResourceDefinition, 0, len(page.Items))
	for _, o := range page.Items {
		all = append(all, o.(*apiextv1.CustomResourceDefinition))
	}
	var errs []error
	present := map[string]bool{}
	for _, def := range all {
		present[def.Name] = true
		if err := d.sync(ctx, def, all); err != nil {
			errs = append(errs, fmt.Errorf("definition %s: %w", def.Name, err))
		}
	}
	for name := range d.served {
		if !present[name] {
			d.unserve(name)
		}
	}
	return errors.Join(errs...)
}

func (d *definitionsController) sync(ctx context.Context, def *apiextv1.CustomResourceDefinition, all []*apiextv1.CustomResourceDefinition) error {
	if def.DeletionTimestamp != nil {
		return d.cleanUp(ctx, def)
	}
	if status := crd.Status(def, all); !apiequality.Semantic.DeepEqual(status, def.Status) {
		// The write comes back as an event, which serves it.
		_, err := d.s.store.Update(ctx, crdPrefix+def.Name, nil, func(cur runtime.Object) (runtime.Object, error) {
			next := cur.(*apiextv1.CustomResourceDefinition).DeepCopy()
			next.Status = crd.Status(next, all)
			return next, nil
		})
		return err
	}
	if !established(def) {
		d.unserve(def.Name)
		return nil
	}
	if cur := d.served[def.Name]; cur != nil && cur.uid == string(def.UID) && cur.generation == def.Generation {
		return nil
	}
	return d.serve(def)
}

func established(def *apiextv1.CustomResourceDefinition) bool {
	for _, c := range def.Status.Conditions {
		if c.Type == apiextv1.Established {
			return c.Status == apiextv1.ConditionTrue
		}
	}
	return false
}

// serve compiles the definition's served versions and serves them.
func (d *definitionsController) serve(def *apiextv1.CustomResourceDefinition) error {
	var rs []*resources.Resource
	var kinds []OpenAPIKind
	for _, v := range def.Spec.Versions {
		if !v.Served {
			continue
		}
		ver, err := crd.NewVersion(def, v.Name)
		if err != nil {
			return fmt.Errorf("version %s: %w", v.Name, err)
		}
		res := resources.Custom(def, ver)
		rs = append(rs, res)
		k := OpenAPIKind{GVK: res.GroupVersionKind(), Resource: res.GVR.Resource, Namespaced: res.Namespaced, Status: res.HasStatus}
		if sch, err := ver.Schema(); err == nil {
			k.Schema = sch
		} else {
			d.s.log.Warn("no OpenAPI schema for a custom resource", "kind", k.GVK, "err", err)
		}
		kinds = append(kinds, k)
	}
	group, plural := def.Spec.Group, def.Status.AcceptedNames.Plural
	if old := d.served[def.Name]; old != nil && old.plural != plural {
		d.unserve(def.Name)
	}
	if err := d.s.reg.SetCustom(group, plural, rs...); err != nil {
		return err
	}
	now := &served{uid: string(def.UID), generation: def.Generation, group: group, plural: plural}
	for _, k := range kinds {
		if err := d.s.SetOpenAPIKind(k); err != nil {
			d.s.log.Warn("OpenAPI of a custom resource", "kind", k.GVK, "err", err)
		}
		now.kinds = append(now.kinds, k.GVK)
	}
	if old := d.served[def.Name]; old != nil {
		for _, gvk := range old.kinds {
			if !slices.Contains(now.kinds, gvk) {
				d.s.RemoveOpenAPIKind(gvk)
			}
		}
	}
	d.served[def.Name] = now
	d.s.log.Info("serving custom resource", "definition", def.Name, "versions", len(rs))
	return nil
}

func (d *definitionsController) unserve(name string) {
	old := d.served[name]
	if old == nil {
		return
	}
	if err := d.s.reg.SetCustom(old.group, old.plural); err != nil {
		d.s.log.Warn("removing a custom resource", "definition", name, "err", err)
	}
	for _, gvk := range old.kinds {
		d.s.RemoveOpenAPIKind(gvk)
	}
	delete(d.served, name)
}

// cleanUp deletes a deleted definition's objects (those with finalizers
// are marked deleted and wait for them), then lets the definition go.
// Its resources stay served meanwhile, so that finalizers can be removed.
func (d *definitionsController) cleanUp(ctx context.Context, def *apiextv1.CustomResourceDefinition) error {
	if !slices.Contains(def.Finalizers, resources.CleanupFinalizer) {
		return nil
	}
	prefix := "/registry/" + def.Spec.Group + "/" + def.Status.AcceptedNames.Plural + "/"
	page, err := d.s.store.List(ctx, prefix, storage.ListOptions{})
	if err != nil {
		return err
	}
	left := 0
	for _, o := range page.Items {
		m, err := meta.Accessor(o)
		if err != nil {
			continue
		}
		key := prefix + m.GetName()
		if m.GetNamespace() != "" {
			key = prefix + m.GetNamespace() + "/" + m.GetName()
		}
		if len(m.GetFinalizers()) == 0 {
			if _, err := d.s.store.Delete(ctx, key, &storage.Preconditions{UID: m.GetUID()}, nil); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			continue
		}
		left++
		if m.GetDeletionTimestamp() == nil {
			now := metav1.Now()
			if _, err := d.s.store.Update(ctx, key, &storage.Preconditions{UID: m.GetUID()}, func(cur runtime.Object) (runtime.Object, error) {
				next := cur.DeepCopyObject()
				nm, _ := meta.Accessor(next)
				nm.SetDeletionTimestamp(&now)
				return next, nil
			}); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
	}
	if left > 0 {
		return fmt.Errorf("%d objects wait for their finalizers: %w", left, errRetryLater)
	}
	d.unserve(def.Name)
	_, err = d.s.store.Update(ctx, crdPrefix+def.Name, &storage.Preconditions{UID: def.UID}, func(cur runtime.Object) (runtime.Object, error) {
		next := cur.(*apiextv1.CustomResourceDefinition).DeepCopy()
		next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == resources.CleanupFinalizer })
		return next, nil
	})
	if err != nil {
		return err
	}
	// Nothing holds it any more: it goes, as the API's own writes would finish it.
	if _, err := d.s.store.Delete(ctx, crdPrefix+def.Name, &storage.Preconditions{UID: def.UID}, func(cur runtime.Object) error {
		if m, _ := meta.Accessor(cur); len(m.GetFinalizers()) > 0 {
			return fmt.Errorf("finalizers %v: %w", m.GetFinalizers(), errRetryLater)
		}
		return nil
	}); err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, errRetryLater) {
		return err
	}
	return nil
}

var errRetryLater = errors.New("retry later")
