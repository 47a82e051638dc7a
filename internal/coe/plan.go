package coe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/resources"
)

// Which hosts a node group has, and which it should have. Hosts carry no
// labels, so their names say which group they belong to (docs/service.md,
// resources.HostPrefix): <cluster>-master-<i>, <cluster>-node-<i> for the
// default groups, <group>-<i> for the others, whose names are
// <cluster>-<group>.

func defaultMasterGroup(cluster string) string { return resources.DefaultMasterGroup(cluster) }
func defaultWorkerGroup(cluster string) string { return resources.DefaultWorkerGroup(cluster) }

// hostIndex parses a host name "<prefix><i>".
func hostIndex(prefix, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// plan is what one node group needs done.
type plan struct {
	group  *wharfv1.NodeGroup
	prefix string
	// hosts are the group's existing hosts, by index.
	hosts []provider.Host
	// create and remove name hosts to make and to take away, in order.
	create, remove []string
	// invalid says why the group's size cannot be applied ("": it can).
	invalid string
}

func (p *plan) role() string {
	if p.group.Spec.Role == wharfv1.RoleMaster {
		return provider.RoleMaster
	}
	return provider.RoleWorker
}

// names are the hosts the group has once the plan is done.
func (p *plan) names() []string {
	var out []string
	for _, h := range p.hosts {
		if !slices.Contains(p.remove, h.Name) {
			out = append(out, h.Name)
		}
	}
	return append(out, p.create...)
}

// planGroups sorts a cluster's hosts into its groups and says what each
// group needs. Hosts of no group (a deleted group's) are orphans.
func planGroups(cluster string, groups []*wharfv1.NodeGroup, hosts []provider.Host) ([]*plan, []provider.Host) {
	// Default groups first: on a clash of prefixes they keep theirs.
	groups = slices.Clone(groups)
	rank := func(g *wharfv1.NodeGroup) int {
		switch g.Name {
		case defaultMasterGroup(cluster):
			return 0
		case defaultWorkerGroup(cluster):
			return 1
		}
		return 2
	}
	slices.SortStableFunc(groups, func(a, b *wharfv1.NodeGroup) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	var plans []*plan
	owner := map[string]string{} // prefix → group
	claimed := map[string]bool{}
	for _, g := range groups {
		p := &plan{group: g, prefix: resources.HostPrefix(g)}
		plans = append(plans, p)
		if other, ok := owner[p.prefix]; ok {
			p.invalid = fmt.Sprintf("its hosts would be named like those of node group %q (%s<i>)", other, p.prefix)
			continue
		}
		owner[p.prefix] = g.Name
		for _, h := range hosts {
			if _, ok := hostIndex(p.prefix, h.Name); ok {
				p.hosts = append(p.hosts, h)
				claimed[h.Name] = true
			}
		}
		slices.SortFunc(p.hosts, func(a, b provider.Host) int {
			i, _ := hostIndex(p.prefix, a.Name)
			j, _ := hostIndex(p.prefix, b.Name)
			return i - j
		})
		p.invalid = sizeProblem(g)
		if p.invalid == "" {
			p.resize()
		}
	}
	var orphans []provider.Host
	for _, h := range hosts {
		if !claimed[h.Name] {
			orphans = append(orphans, h)
		}
	}
	return plans, orphans
}

// sizeProblem says why a group's nodeCount cannot be applied.
func sizeProblem(g *wharfv1.NodeGroup) string {
	s := g.Spec
	switch {
	case s.NodeCount < 0:
		return fmt.Sprintf("nodeCount %d is negative", s.NodeCount)
	case s.Role == wharfv1.RoleMaster && s.NodeCount%2 == 0:
		return fmt.Sprintf("nodeCount %d: masters must be an odd number (etcd's quorum)", s.NodeCount)
	case s.NodeCount < s.MinNodeCount:
		return fmt.Sprintf("nodeCount %d is below minNodeCount %d", s.NodeCount, s.MinNodeCount)
	case s.MaxNodeCount != nil && s.NodeCount > *s.MaxNodeCount:
		return fmt.Sprintf("nodeCount %d is above maxNodeCount %d", s.NodeCount, *s.MaxNodeCount)
	}
	return ""
}

// resize fills create (the lowest free indexes) or remove (nodesToRemove
// first, then the highest indexes).
func (p *plan) resize() {
	want := int(p.group.Spec.NodeCount)
	used := map[int]bool{}
	for _, h := range p.hosts {
		i, _ := hostIndex(p.prefix, h.Name)
		used[i] = true
	}
	for i := 0; len(p.hosts)+len(p.create) < want; i++ {
		if !used[i] {
			p.create = append(p.create, p.prefix+strconv.Itoa(i))
		}
	}
	excess := len(p.hosts) - want
	for _, name := range p.group.Spec.NodesToRemove {
		if len(p.remove) < excess && !slices.Contains(p.remove, name) &&
			slices.ContainsFunc(p.hosts, func(h provider.Host) bool { return h.Name == name }) {
			p.remove = append(p.remove, name)
		}
	}
	for i := len(p.hosts) - 1; i >= 0 && len(p.remove) < excess; i-- {
		if !slices.Contains(p.remove, p.hosts[i].Name) {
			p.remove = append(p.remove, p.hosts[i].Name)
		}
	}
}
