package proxy

import (
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
	claims map[string]map[types.NamespacedName]string // key, claimant: value
	kernel map[string]string
}

func newElemStore(d storeDef) *elemStore {
	s := &elemStore{storeDef: d}
	s.reset()
	return s
}

func (s *elemStore) reset() {
	s.claims, s.kernel = map[string]map[types.NamespacedName]string{}, map[string]string{}
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
	if s.claims[key] == nil {
		s.claims[key] = map[types.NamespacedName]string{}
	}
	s.claims[key][owner] = value
}

func (s *elemStore) release(key string, owner types.NamespacedName) {
	delete(s.claims[key], owner)
	if len(s.claims[key]) == 0 {
		delete(s.claims, key)
	}
}

// write makes the kernel's elements of keys what the claims say.
func (s *elemStore) write(tx *knftables.Transaction, keys []string) {
	for _, key := range keys {
		var want string
		var first *types.NamespacedName
		for owner, v := range s.claims[key] {
			if first == nil || compareNames(owner, *first) < 0 {
				first, want = &owner, v
			}
		}
		have, had := s.kernel[key]
		if had && first != nil && have == want {
			continue
		}
		if had {
			tx.Delete(s.element(key, ""))
			delete(s.kernel, key)
		}
		if first != nil {
			tx.Add(s.element(key, want))
			s.kernel[key] = want
		}
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
