package proxy

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// elemStore tracks a set or map shared by the services: the elements
// each service claims and what the kernel has. Two services may claim one
// element (an endpoint behind several services; a cluster IP passed from
// a deleted service to a new one before the informers tell of the
// deletion): the kernel gets the value of the first claimant by name and
// keeps the element while anyone claims it.
type elemStore struct {
	storeDef
	name   string                // base-<generation>
	claims map[string][]claimant // by key, sorted by owner
	kernel map[string]string
}

// claimant is a service claiming an element, and the value it wants.
type claimant struct {
	owner types.NamespacedName
	value string
}

func newElemStore(d storeDef) *elemStore {
	s := &elemStore{storeDef: d}
	s.reset(genA)
	return s
}

// reset forgets claims and kernel elements, and names the store of
// generation gen.
func (s *elemStore) reset(gen string) {
	s.name = s.base + "-" + gen
	s.claims, s.kernel = map[string][]claimant{}, map[string]string{}
}

func (s *elemStore) object() knftables.Object {
	if s.isMap && s.typeOf {
		return &knftables.Map{Name: s.name, TypeOf: s.typ}
	}
	if s.isMap {
		return &knftables.Map{Name: s.name, Type: s.typ}
	}
	return &knftables.Set{Name: s.name, Type: s.typ}
}

func (s *elemStore) claim(key string, owner types.NamespacedName, value string) {
	cs := s.claims[key]
	i, found := slices.BinarySearchFunc(cs, owner, func(c claimant, o types.NamespacedName) int { return compareNames(c.owner, o) })
	if found {
		cs[i].value = value
		return
	}
	s.claims[key] = slices.Insert(cs, i, claimant{owner, value})
}

func (s *elemStore) release(key string, owner types.NamespacedName) {
	cs := slices.DeleteFunc(s.claims[key], func(c claimant) bool { return c.owner == owner })
	if len(cs) == 0 {
		delete(s.claims, key)
		return
	}
	s.claims[key] = cs
}

// resolve returns the value the kernel is to have for key: the first
// claimant's by name; ok false when nobody claims key.
func (s *elemStore) resolve(key string) (value string, ok bool) {
	if cs := s.claims[key]; len(cs) > 0 {
		return cs[0].value, true
	}
	return "", false
}

// write makes the kernel's elements of keys what the claims say.
func (s *elemStore) write(tx *knftables.Transaction, keys []string) {
	for _, key := range keys {
		want, claimed := s.resolve(key)
		have, had := s.kernel[key]
		if had && claimed && have == want {
			continue
		}
		if had {
			tx.Delete(s.element(key, ""))
			delete(s.kernel, key)
		}
		if claimed {
			tx.Add(s.element(key, want))
			s.kernel[key] = want
		}
	}
}

// settle takes every claimed element as the kernel's, for a bulkWriter to
// write into the empty set or map.
func (s *elemStore) settle() {
	s.kernel = make(map[string]string, len(s.claims))
	for key, cs := range s.claims {
		s.kernel[key] = cs[0].value
	}
}

func (s *elemStore) element(key, value string) *knftables.Element {
	e := &knftables.Element{Key: strings.Split(key, " . ")}
	if !s.isMap {
		e.Set = s.name
		return e
	}
	e.Map = s.name
	if value != "" {
		e.Value = strings.Split(value, " . ")
	}
	return e
}
