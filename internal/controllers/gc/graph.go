package gc

import (
	"cmp"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// action says what a worker does with a uid.
type action int

const (
	// actDelete checks an object against its owners (deleting or patching it)
	// and, for an owner in foreground deletion, finishes it when it can.
	actDelete action = iota
	// actOrphan strips an owner's references from its dependents.
	actOrphan
)

func (a action) String() string {
	if a == actOrphan {
		return "orphan"
	}
	return "delete"
}

type workItem struct {
	uid types.UID
	act action
}

// node is the graph's view of one observed object. Nodes are replaced, never
// mutated, so copies handed to workers stay consistent.
type node struct {
	id         objectID
	namespaced bool
	owners     []metav1.OwnerReference
	deleting   bool // deletionTimestamp set
	foreground bool // finalizer foregroundDeletion
	orphan     bool // finalizer orphan
}

func newNode(r Resource, obj metav1.Object) *node {
	fins := obj.GetFinalizers()
	return &node{
		id:         objectID{GVR: r.GVR, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()},
		namespaced: r.Namespaced,
		owners:     obj.GetOwnerReferences(),
		deleting:   obj.GetDeletionTimestamp() != nil,
		foreground: slices.Contains(fins, metav1.FinalizerDeleteDependents),
		orphan:     slices.Contains(fins, metav1.FinalizerOrphanDependents),
	}
}

func (n *node) deletingDependents() bool { return n.deleting && n.foreground }
func (n *node) orphaning() bool          { return n.deleting && n.orphan }

// owns reports whether n may own dep: a namespaced owner only owns
// dependents in its own namespace (ownerReferences carry no namespace).
func (n *node) owns(dep *node) bool {
	return !n.namespaced || n.id.Namespace == dep.id.Namespace
}

// graph indexes observed objects by uid, and dependents by their owners' uid
// whether or not the owner itself has been observed.
type graph struct {
	mu         sync.RWMutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]struct{}
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]struct{}{}}
}

// observe records an added or updated object and returns the work it causes.
func (g *graph) observe(r Resource, obj metav1.Object) []workItem {
	n := newNode(r, obj)
	uid := n.id.UID
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[uid]
	g.nodes[uid] = n

	var work []workItem
	oldRefs := map[types.UID]metav1.OwnerReference{}
	if old != nil {
		for _, ref := range old.owners {
			oldRefs[ref.UID] = ref
		}
	}
	newRefs := map[types.UID]metav1.OwnerReference{}
	for _, ref := range n.owners {
		newRefs[ref.UID] = ref
	}
	for ownerUID, ref := range oldRefs {
		nref, kept := newRefs[ownerUID]
		if !kept {
			g.unlink(ownerUID, uid)
		}
		// An owner waiting for blocking dependents may be done now.
		if !kept || (blocks(ref) && !blocks(nref)) {
			if on := g.nodes[ownerUID]; on != nil && on.deletingDependents() {
				work = append(work, workItem{ownerUID, actDelete})
			}
		}
	}
	checkSelf := false
	for ownerUID := range newRefs {
		g.link(ownerUID, uid)
		if _, had := oldRefs[ownerUID]; had {
			continue
		}
		// A new reference needs a live check unless its owner is known to
		// be alive; a known owner's deletion will enqueue us when it comes.
		on := g.nodes[ownerUID]
		if on == nil || !on.owns(n) || on.deletingDependents() {
			checkSelf = true
		}
	}
	if checkSelf {
		work = append(work, workItem{uid, actDelete})
	}

	if n.orphaning() && (old == nil || !old.orphaning()) {
		work = append(work, workItem{uid, actOrphan})
	}
	if n.deletingDependents() && (old == nil || !old.deletingDependents()) {
		if !checkSelf {
			work = append(work, workItem{uid, actDelete})
		}
		for dep := range g.dependents[uid] {
			if d := g.nodes[dep]; d != nil && n.owns(d) {
				work = append(work, workItem{dep, actDelete})
			}
		}
	}
	return work
}

// forget removes a deleted object and returns the work it causes: its
// dependents may have lost their last owner, and owners in foreground
// deletion may have lost their last blocking dependent.
func (g *graph) forget(uid types.UID) []workItem {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return nil
	}
	delete(g.nodes, uid)
	var work []workItem
	for _, ref := range n.owners {
		g.unlink(ref.UID, uid)
		if on := g.nodes[ref.UID]; on != nil && on.deletingDependents() {
			work = append(work, workItem{ref.UID, actDelete})
		}
	}
	for dep := range g.dependents[uid] {
		work = append(work, workItem{dep, actDelete})
	}
	return work
}

// forgetResource forgets every object of resource gvr, as if each was
// deleted, and returns the work that causes.
func (g *graph) forgetResource(gvr schema.GroupVersionResource) []workItem {
	g.mu.RLock()
	var uids []types.UID
	for uid, n := range g.nodes {
		if n.id.GVR == gvr {
			uids = append(uids, uid)
		}
	}
	g.mu.RUnlock()
	var work []workItem
	for _, uid := range uids {
		work = append(work, g.forget(uid)...)
	}
	return work
}

// withOwnerKinds returns the observed objects with an owner of one of kinds.
func (g *graph) withOwnerKinds(kinds []schema.GroupKind) []types.UID {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []types.UID
	for uid, n := range g.nodes {
		for _, ref := range n.owners {
			gv, err := schema.ParseGroupVersion(ref.APIVersion)
			if err == nil && slices.Contains(kinds, schema.GroupKind{Group: gv.Group, Kind: ref.Kind}) {
				out = append(out, uid)
				break
			}
		}
	}
	return out
}

func (g *graph) link(owner, dep types.UID) {
	deps := g.dependents[owner]
	if deps == nil {
		deps = map[types.UID]struct{}{}
		g.dependents[owner] = deps
	}
	deps[dep] = struct{}{}
}

func (g *graph) unlink(owner, dep types.UID) {
	deps := g.dependents[owner]
	delete(deps, dep)
	if len(deps) == 0 {
		delete(g.dependents, owner)
	}
}

// get returns a copy of the node for uid.
func (g *graph) get(uid types.UID) (node, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n, ok := g.nodes[uid]
	if !ok {
		return node{}, false
	}
	return *n, true
}

// observed reports whether an object with uid was seen in namespace ns.
func (g *graph) observed(uid types.UID, ns string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n, ok := g.nodes[uid]
	return ok && n.id.Namespace == ns
}

// alive reports whether id was observed and is not in foreground deletion.
func (g *graph) alive(id objectID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n, ok := g.nodes[id.UID]
	return ok && n.id.GVR == id.GVR && n.id.Namespace == id.Namespace && !n.deletingDependents()
}

// dependentsOf returns copies of the observed dependents that uid may own.
func (g *graph) dependentsOf(uid types.UID) []node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	owner := g.nodes[uid]
	var out []node
	for dep := range g.dependents[uid] {
		d := g.nodes[dep]
		if d == nil || (owner != nil && !owner.owns(d)) {
			continue
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b node) int { return cmp.Compare(a.id.UID, b.id.UID) })
	return out
}

func blocks(ref metav1.OwnerReference) bool {
	return ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
}
