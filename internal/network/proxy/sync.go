package proxy

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// Sync writes what changed since the last Sync in one nft transaction.
// The first Sync, and the one after a failed Sync, writes everything and
// deletes whatever else the table holds (leftovers of a previous process):
// see fullSync. Call the first one once the informers have synced: the
// services not known by then lose their rules until they are.
// It runs nft in the calling thread's network namespace.
func (p *Proxy) Sync(ctx context.Context) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	start := time.Now()
	full, inputs := p.snapshot()
	if !full && len(inputs) == 0 {
		return nil
	}
	if p.health != nil {
		defer p.health.sync(full, inputs, p.cfg.NodeName)
	}
	desired := make(map[types.NamespacedName]*svcRules, len(inputs))
	for key, in := range inputs {
		desired[key] = p.rulesFor(key, in.svc, in.slices)
	}
	if full {
		if err := p.fullSync(ctx, desired); err != nil {
			p.failed()
			return fmt.Errorf("service proxy: full sync of %d services to nftables table %s: %w", len(desired), p.cfg.Table, err)
		}
		p.log.Info("service proxy synced", "full", true, "services", len(desired),
			"generation", p.stores[0].name, "elapsed", time.Since(start))
		return nil
	}
	tx := p.partialTx(desired)
	if tx.NumOperations() > 0 {
		if err := p.nft.Run(ctx, tx); err != nil {
			p.failed()
			return fmt.Errorf("service proxy: sync %d services to nftables table %s: %w", len(desired), p.cfg.Table, err)
		}
	}
	p.log.Debug("service proxy synced", "full", false, "services", len(desired),
		"operations", tx.NumOperations(), "elapsed", time.Since(start))
	return nil
}

type input struct {
	svc    *service
	slices []*slice
}

// snapshot takes the services to write (all of them for a full sync) and
// clears the changes: later ones are the next Sync's.
func (p *Proxy) snapshot() (full bool, inputs map[types.NamespacedName]input) {
	p.mu.Lock()
	defer p.mu.Unlock()
	full, keys := p.needFull, p.dirty
	if full {
		keys = make(map[types.NamespacedName]bool, len(p.services))
		for k := range p.services {
			keys[k] = true
		}
	}
	inputs = make(map[types.NamespacedName]input, len(keys))
	for k := range keys {
		in := input{svc: p.services[k]}
		for _, s := range p.bySvc[k] {
			in.slices = append(in.slices, s)
		}
		inputs[k] = in
	}
	p.needFull, p.dirty = false, map[types.NamespacedName]bool{}
	return full, inputs
}

// failed makes the next Sync a full one: what the kernel has is known
// again only after one.
func (p *Proxy) failed() {
	p.mu.Lock()
	p.needFull = true
	p.mu.Unlock()
}

type tableObjects struct{ chains, sets, maps map[string]bool }

// The two generations of the shared sets and maps.
const genA, genB = "a", "b"

// listTable lists the names in the table; none if it does not exist.
func (p *Proxy) listTable(ctx context.Context) (tableObjects, error) {
	objs := tableObjects{chains: map[string]bool{}, sets: map[string]bool{}, maps: map[string]bool{}}
	for _, l := range []struct {
		typ   string
		names map[string]bool
	}{{"chains", objs.chains}, {"sets", objs.sets}, {"maps", objs.maps}} {
		names, err := p.nft.List(ctx, l.typ)
		switch {
		case knftables.IsNotFound(err):
			return objs, nil
		// Listing through netlink filters all chains by table but fails to
		// list the sets of a missing table; ours always has chains.
		case err != nil && l.typ != "chains" && len(objs.chains) == 0:
			return objs, nil
		case err != nil:
			return objs, fmt.Errorf("%s: %w", l.typ, err)
		}
		for _, n := range names {
			l.names[n] = true
		}
	}
	return objs, nil
}

// nextGen returns the generation a full sync fills: the one the rules do
// not use. Both exist after a full sync that failed half-way; the rule
// of the services chain tells which one is in use.
func (p *Proxy) nextGen(ctx context.Context, existing tableObjects) (string, error) {
	base := storeDefs[storeServiceIPs].base
	a, b := existing.maps[base+"-"+genA], existing.maps[base+"-"+genB]
	switch {
	case a && b:
		rules, err := p.nft.ListRules(ctx, servicesChain)
		if err != nil {
			return "", fmt.Errorf("rules of %s: %w", servicesChain, err)
		}
		for _, r := range rules {
			if strings.Contains(r.Rule, "@"+base+"-"+genA) {
				return genB, nil
			}
		}
		return genA, nil
	case a:
		return genB, nil
	}
	return genA, nil
}

// fullSync writes the whole table in three steps, none of which leaves
// traffic without rules. The first transaction adds the table, every
// chain and affinity set, and the empty shared sets and maps of the
// generation the rules do not use (nextGen); bulk fills these; the last
// transaction rewrites every rule, now to the new generation, and deletes
// everything else: the previous generation, a previous process's chains
// and sets. Affinity sets are never flushed: clients keep their endpoint.
// The table is never deleted or flushed.
func (p *Proxy) fullSync(ctx context.Context, desired map[types.NamespacedName]*svcRules) error {
	existing, err := p.listTable(ctx)
	if err != nil {
		return fmt.Errorf("list the table: %w", err)
	}
	gen, err := p.nextGen(ctx, existing)
	if err != nil {
		return err
	}
	for _, s := range p.stores {
		s.reset(gen)
	}

	tx := p.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("wharf service proxy")})
	for _, bc := range baseChains {
		tx.Add(&knftables.Chain{Name: bc.name, Type: &bc.typ, Hook: &bc.hook, Priority: &bc.priority})
	}
	chains := p.fixedRules()
	keys := slices.SortedFunc(maps.Keys(desired), compareNames)
	p.picks = usedPicks(desired, nil)
	for _, k := range slices.SortedFunc(maps.Keys(p.picks), comparePicks) {
		chains = append(chains, p.pickRules(k))
	}
	keepSets := map[string]bool{}
	for _, s := range p.stores {
		tx.Add(s.object())
		if existing.sets[s.name] || existing.maps[s.name] {
			tx.Flush(s.object())
		}
		keepSets[s.name] = true
	}
	p.written = make(map[types.NamespacedName]*svcRules, len(keys))
	for _, k := range keys {
		r := desired[k]
		if r == nil {
			continue
		}
		p.written[k] = r
		for _, s := range r.sets {
			tx.Add(affinitySet(s))
			keepSets[s.name] = true
		}
		chains = append(chains, r.chains...)
		for _, c := range r.claims {
			p.stores[c.store].claim(c.key, k, c.value)
		}
	}
	keepChains := map[string]bool{}
	for _, bc := range baseChains {
		keepChains[bc.name] = true
	}
	for _, c := range chains {
		if !keepChains[c.name] {
			tx.Add(&knftables.Chain{Name: c.name})
		}
		keepChains[c.name] = true
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("add the objects: %w", err)
	}

	for _, s := range p.stores {
		s.settle()
	}
	if err := p.bulk.fill(ctx, p.stores[:]); err != nil {
		return fmt.Errorf("fill the sets and maps of generation %s: %w", gen, err)
	}

	tx = p.nft.NewTransaction()
	for _, c := range chains {
		tx.Flush(&knftables.Chain{Name: c.name})
		addRules(tx, c)
	}
	deleteStale(tx, stale(existing.chains, keepChains), stale(existing.sets, keepSets), stale(existing.maps, keepSets))
	if err := p.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("write the rules: %w", err)
	}
	return nil
}

// partialTx writes the services in desired (nil: gone): their new and
// changed chains, their sets, the elements they claim or let go of; then
// deletes the chains and sets they no longer use.
func (p *Proxy) partialTx(desired map[types.NamespacedName]*svcRules) *knftables.Transaction {
	tx := p.nft.NewTransaction()
	keys := slices.SortedFunc(maps.Keys(desired), compareNames)
	var fill []chainRules
	var staleChains, staleSets []string
	for _, k := range keys {
		old, cur := p.written[k], desired[k]
		oldChains, oldSets := map[string][]string{}, map[string]bool{}
		if old != nil {
			for _, c := range old.chains {
				oldChains[c.name] = c.rules
			}
			for _, s := range old.sets {
				oldSets[s.name] = true
			}
		}
		curChains, curSets := map[string]bool{}, map[string]bool{}
		if cur != nil {
			for _, s := range cur.sets {
				curSets[s.name] = true
				if !oldSets[s.name] {
					tx.Add(affinitySet(s))
				}
			}
			for _, c := range cur.chains {
				curChains[c.name] = true
				rules, had := oldChains[c.name]
				switch {
				case !had:
					tx.Add(&knftables.Chain{Name: c.name})
				case slices.Equal(rules, c.rules):
					continue
				default:
					tx.Flush(&knftables.Chain{Name: c.name})
				}
				fill = append(fill, c)
			}
		}
		for name := range oldChains {
			if !curChains[name] {
				staleChains = append(staleChains, name)
			}
		}
		for name := range oldSets {
			if !curSets[name] {
				staleSets = append(staleSets, name)
			}
		}
	}
	picks := usedPicks(desired, p.written)
	for _, k := range slices.SortedFunc(maps.Keys(picks), comparePicks) {
		if !p.picks[k] {
			tx.Add(&knftables.Chain{Name: k.chain()})
			fill = append(fill, p.pickRules(k))
		}
	}
	for k := range p.picks {
		if !picks[k] {
			staleChains = append(staleChains, k.chain())
		}
	}
	p.picks = picks
	for _, c := range fill {
		addRules(tx, c)
	}

	var touched [numStores]map[string]bool
	for i := range touched {
		touched[i] = map[string]bool{}
	}
	for _, k := range keys {
		if old := p.written[k]; old != nil {
			for _, c := range old.claims {
				p.stores[c.store].release(c.key, k)
				touched[c.store][c.key] = true
			}
		}
		if cur := desired[k]; cur != nil {
			for _, c := range cur.claims {
				p.stores[c.store].claim(c.key, k, c.value)
				touched[c.store][c.key] = true
			}
			p.written[k] = cur
		} else {
			delete(p.written, k)
		}
	}
	for i, s := range p.stores {
		s.write(tx, slices.Sorted(maps.Keys(touched[i])))
	}
	slices.Sort(staleChains)
	slices.Sort(staleSets)
	deleteStale(tx, staleChains, staleSets, nil)
	return tx
}

// usedPicks returns the pick chains that the services of desired (nil:
// gone) and the others of written go to.
func usedPicks(desired, written map[types.NamespacedName]*svcRules) map[pick]bool {
	used := map[pick]bool{}
	for k, r := range written {
		if _, ok := desired[k]; !ok {
			for _, n := range r.picks {
				used[n] = true
			}
		}
	}
	for _, r := range desired {
		if r != nil {
			for _, n := range r.picks {
				used[n] = true
			}
		}
	}
	return used
}

// deleteStale deletes chains, sets and maps that nothing else uses once
// the chains are flushed: the kernel refuses to delete what is still
// referenced.
func deleteStale(tx *knftables.Transaction, chains, sets, maps []string) {
	for _, name := range chains {
		tx.Flush(&knftables.Chain{Name: name})
	}
	for _, name := range sets {
		tx.Delete(&knftables.Set{Name: name})
	}
	for _, name := range maps {
		tx.Delete(&knftables.Map{Name: name})
	}
	for _, name := range chains {
		tx.Delete(&knftables.Chain{Name: name})
	}
}

// stale returns the names in existing but not in keep, sorted.
func stale(existing, keep map[string]bool) []string {
	var names []string
	for name := range existing {
		if !keep[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func addRules(tx *knftables.Transaction, c chainRules) {
	for _, r := range c.rules {
		tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
	}
}

func affinitySet(s setDef) *knftables.Set {
	return &knftables.Set{
		Name: s.name,
		Type: "ipv4_addr",
		// The kernel adds dynamic to a set the packet path updates; asking
		// for it keeps a later add of the same set from differing.
		Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
		Timeout: knftables.PtrTo(time.Duration(s.timeout) * time.Second),
	}
}

func compareNames(a, b types.NamespacedName) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}
