package pods

import (
	"context"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// loop is the kubelet's PLEG and housekeeping: relist the runtime every
// relistPeriod, wake every worker every resyncPeriod.
func (m *Manager) loop(ctx context.Context) {
	relist := m.clock.NewTicker(m.relistPeriod)
	defer relist.Stop()
	resync := m.clock.NewTicker(m.resyncPeriod)
	defer resync.Stop()
	close(m.ready)
	var last map[types.UID]string
	failing := false
	for {
		seen, err := m.relist(ctx, last)
		switch {
		case err != nil && !failing:
			// Logged once per outage: containerd restarting is routine.
			m.log.Warn("cannot list the runtime's pods; retrying", "err", err)
			failing = true
		case err == nil:
			if failing {
				m.log.Info("runtime reachable again")
			}
			failing, last = false, seen
		}
		m.wakeDue()
		select {
		case <-ctx.Done():
			return
		case <-relist.C():
		case <-resync.C():
			m.wakeAll()
			m.housekeeping()
			m.rotateLogs(ctx)
			m.maybeCollectImages(ctx)
			m.checkEphemeralStorage(ctx)
		}
	}
}

// relist lists every pod sandbox and container, wakes the workers of pods
// whose runtime state changed since last, and starts workers for pods the
// runtime has but the API does not (orphans to clean up).
func (m *Manager) relist(ctx context.Context, last map[types.UID]string) (map[types.UID]string, error) {
	sandboxes, err := m.cfg.Runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, err
	}
	containers, err := m.cfg.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return nil, err
	}
	m.learnRuntimeName(ctx)
	parts := map[types.UID][]string{}
	for _, s := range sandboxes {
		if uid := types.UID(s.Labels[labelPodUID]); uid != "" {
			parts[uid] = append(parts[uid], "s:"+s.Id+":"+s.State.String())
		}
	}
	live := map[string]bool{}
	for _, c := range containers {
		live[c.Id] = true
		if uid := types.UID(c.Labels[labelPodUID]); uid != "" {
			parts[uid] = append(parts[uid], "c:"+c.Id+":"+c.State.String())
		}
	}
	m.reader.prune(live)
	seen := make(map[types.UID]string, len(parts))
	for uid, p := range parts {
		sort.Strings(p)
		seen[uid] = strings.Join(p, ",")
	}
	known := m.knownPods()
	for uid, fp := range seen {
		if !known[uid] && m.ensureWorker(uid) {
			m.log.Info("found a pod the API does not have; cleaning it up", "uid", uid)
		}
		if last == nil || last[uid] != fp {
			m.wake(uid)
		}
	}
	for uid := range last {
		if _, ok := seen[uid]; !ok {
			m.wake(uid)
		}
	}
	return seen, nil
}

// learnRuntimeName asks the runtime its name once, for container IDs
// (containerd://<id>).
func (m *Manager) learnRuntimeName(ctx context.Context) {
	m.mu.Lock()
	known := m.runtimeNameKnown
	m.mu.Unlock()
	if known {
		return
	}
	v, err := m.cfg.Runtime.Version(ctx, "v1")
	if err != nil || v.GetRuntimeName() == "" {
		return
	}
	m.mu.Lock()
	m.runtimeName, m.runtimeNameKnown = v.GetRuntimeName(), true
	m.mu.Unlock()
}

func (m *Manager) containerIDPrefix() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runtimeName
}

// prune drops cached statuses of containers the runtime no longer has.
func (rr *runtimeReader) prune(live map[string]bool) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for id := range rr.cache {
		if !live[id] {
			delete(rr.cache, id)
		}
	}
}
