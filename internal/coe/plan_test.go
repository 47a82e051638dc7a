package coe

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
)

func group(name, role string, count int32, tweak ...func(*wharfv1.NodeGroupSpec)) *wharfv1.NodeGroup {
	g := &wharfv1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       wharfv1.NodeGroupSpec{Cluster: "c", Role: role, NodeCount: count},
	}
	for _, f := range tweak {
		f(&g.Spec)
	}
	return g
}

func hostsNamed(names ...string) []provider.Host {
	var out []provider.Host
	for _, n := range names {
		out = append(out, provider.Host{Name: n})
	}
	return out
}

func TestPlanGroups(t *testing.T) {
	master := group("c-default-master", wharfv1.RoleMaster, 1)
	worker := func(n int32, tweak ...func(*wharfv1.NodeGroupSpec)) *wharfv1.NodeGroup {
		return group("c-default-worker", wharfv1.RoleWorker, n, tweak...)
	}
	type want struct {
		create, remove []string
		invalid        string
	}
	tests := []struct {
		name    string
		groups  []*wharfv1.NodeGroup
		hosts   []provider.Host
		want    map[string]want // by group
		orphans []string
	}{{
		name:   "new cluster",
		groups: []*wharfv1.NodeGroup{master, worker(2)},
		want: map[string]want{
			"c-default-master": {create: []string{"c-master-0"}},
			"c-default-worker": {create: []string{"c-node-0", "c-node-1"}},
		},
	}, {
		name:   "grow fills the lowest free index",
		groups: []*wharfv1.NodeGroup{master, worker(4)},
		hosts:  hostsNamed("c-master-0", "c-node-0", "c-node-2"),
		want:   map[string]want{"c-default-master": {}, "c-default-worker": {create: []string{"c-node-1", "c-node-3"}}},
	}, {
		name: "shrink removes nodesToRemove first, then the highest",
		groups: []*wharfv1.NodeGroup{master, worker(1, func(s *wharfv1.NodeGroupSpec) {
			s.NodesToRemove = []string{"c-node-0", "c-node-9"}
		})},
		hosts: hostsNamed("c-master-0", "c-node-0", "c-node-1", "c-node-10", "c-node-2"),
		want:  map[string]want{"c-default-master": {}, "c-default-worker": {remove: []string{"c-node-0", "c-node-10", "c-node-2"}}},
	}, {
		name:   "bounds",
		groups: []*wharfv1.NodeGroup{group("c-default-master", wharfv1.RoleMaster, 2), worker(5, func(s *wharfv1.NodeGroupSpec) { s.MaxNodeCount = ptr.To[int32](3) })},
		hosts:  hostsNamed("c-master-0", "c-node-0"),
		want: map[string]want{
			"c-default-master": {invalid: "nodeCount 2: masters must be an odd number (etcd's quorum)"},
			"c-default-worker": {invalid: "nodeCount 5 is above maxNodeCount 3"},
		},
	}, {
		name: "user groups, orphans and clashes",
		groups: []*wharfv1.NodeGroup{master, worker(1), group("c-gpu", wharfv1.RoleWorker, 1),
			group("c-gpu-big", wharfv1.RoleWorker, 0), group("c-node", wharfv1.RoleWorker, 1)},
		hosts: hostsNamed("c-master-0", "c-node-0", "c-gpu-0", "c-gpu-big-0", "c-gone-0", "c-gpu-x"),
		want: map[string]want{
			"c-default-master": {}, "c-default-worker": {},
			"c-gpu":     {},
			"c-gpu-big": {remove: []string{"c-gpu-big-0"}},
			"c-node":    {invalid: `its hosts would be named like those of node group "c-default-worker" (c-node-<i>)`},
		},
		orphans: []string{"c-gone-0", "c-gpu-x"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, orphans := planGroups("c", tt.groups, tt.hosts)
			got := map[string]want{}
			for _, p := range plans {
				got[p.group.Name] = want{create: p.create, remove: p.remove, invalid: p.invalid}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("plans (-want +got):\n%s", diff)
			}
			var names []string
			for _, h := range orphans {
				names = append(names, h.Name)
			}
			if diff := cmp.Diff(tt.orphans, names); diff != "" {
				t.Errorf("orphans (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostIndex(t *testing.T) {
	for name, want := range map[string]int{"c-node-0": 0, "c-node-12": 12, "c-node-": -1, "c-node-01": -1, "c-node-x": -1, "c-node-1-0": -1, "d-node-1": -1} {
		i, ok := hostIndex("c-node-", name)
		if (want < 0) == ok || (ok && i != want) {
			t.Errorf("hostIndex(%q) = %d, %v; want %d", name, i, ok, want)
		}
	}
}
