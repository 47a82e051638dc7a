package resources

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// view is one immutable state of a Registry: the built-in resources first,
// then those added at run time.
type view struct {
	all     []*Resource
	builtin int // all[:builtin] are the built-in resources
	byGVR   map[schema.GroupVersionResource]*Resource
	byGVK   map[schema.GroupVersionKind]*Resource
	// generation counts the changes to the run-time resources, for caches
	// built from the whole set (discovery, OpenAPI).
	generation uint64
}

func newView(rs []*Resource, generation uint64, builtin int) (*view, error) {
	v := &view{all: rs, builtin: builtin, generation: generation,
		byGVR: make(map[schema.GroupVersionResource]*Resource, len(rs)),
		byGVK: make(map[schema.GroupVersionKind]*Resource, len(rs))}
	for _, r := range rs {
		if _, dup := v.byGVR[r.GVR]; dup {
			return nil, fmt.Errorf("resource %s registered twice", r.GVR)
		}
		if _, dup := v.byGVK[r.GroupVersionKind()]; dup {
			return nil, fmt.Errorf("kind %s registered twice", r.GroupVersionKind())
		}
		v.byGVR[r.GVR] = r
		v.byGVK[r.GroupVersionKind()] = r
	}
	for _, r := range rs {
		if c := r.Conversion; c != nil {
			if s, ok := v.byGVK[c.Storage.GroupVersionKind()]; !ok || s.Conversion != nil {
				return nil, fmt.Errorf("resource %s: its storage %s is not a stored resource of the registry", r.GVR, c.Storage.GVR)
			}
		}
	}
	return v, nil
}

// All returns the resources: the built-in ones in registration order, then
// the run-time ones in the order they were added. The slice is shared and
// read-only.
func (r *Registry) All() []*Resource { return r.view.Load().all }

// Get returns the resource for a group, version and plural resource name.
func (r *Registry) Get(gvr schema.GroupVersionResource) (*Resource, bool) {
	res, ok := r.view.Load().byGVR[gvr]
	return res, ok
}

// ForKind returns the resource whose objects have the given kind.
func (r *Registry) ForKind(gvk schema.GroupVersionKind) (*Resource, bool) {
	res, ok := r.view.Load().byGVK[gvk]
	return res, ok
}

// Generation changes whenever a run-time resource is added or removed.
func (r *Registry) Generation() uint64 { return r.view.Load().generation }

// Builtin reports whether gvr is one of the fixed resources.
func (r *Registry) Builtin(gvr schema.GroupVersionResource) bool {
	v := r.view.Load()
	res, ok := v.byGVR[gvr]
	return ok && slices.Contains(v.all[:v.builtin], res)
}

// SetCustom replaces the run-time resource plural.group (every version)
// by rs: a CustomResourceDefinition's served versions. No rs removes it.
// A built-in resource cannot be replaced: that is an error.
func (r *Registry) SetCustom(group, plural string, rs ...*Resource) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.view.Load()
	all := slices.Clone(old.all[:old.builtin])
	for _, res := range old.all[old.builtin:] {
		if res.GVR.Group != group || res.GVR.Resource != plural {
			all = append(all, res)
		}
	}
	all = append(all, rs...)
	v, err := newView(all, old.generation+1, old.builtin)
	if err != nil {
		return err
	}
	r.view.Store(v)
	return nil
}
