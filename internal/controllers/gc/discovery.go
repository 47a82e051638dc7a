package gc

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// DiscoverResources lists the server's preferred resources that support
// list, watch and delete: what the collector (and the namespace controller,
// for the namespaced ones) can handle. On a partial discovery failure it
// returns what it found together with the error.
func DiscoverResources(d discovery.ServerResourcesInterface) ([]Resource, error) {
	lists, derr := d.ServerPreferredResources()
	if derr != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discover resources: %w", derr)
	}
	var out []Resource
	for _, l := range lists {
		if l == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerbs(r.Verbs, "list", "watch", "delete") {
				continue
			}
			out = append(out, Resource{GVR: gv.WithResource(r.Name), Kind: r.Kind, Namespaced: r.Namespaced})
		}
	}
	if derr != nil {
		return out, fmt.Errorf("discover resources (partial): %w", derr)
	}
	return out, nil
}

func hasVerbs(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
