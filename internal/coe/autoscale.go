package coe

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/resources"
)

// Host autoscaling: each cluster with a node group labelled
// auto_scaling_enabled=true gets a loop of its own that watches the
// cluster's pods and nodes and resizes the group as a user would (its
// nodeCount, and nodesToRemove), leaving the hosts to the reconcile.

// Labels of the host autoscaler (Magnum's names). min_node_count and
// max_node_count are cluster labels that bound the default worker group
// when the group itself sets no bounds.
const (
	LabelAutoScaling = "auto_scaling_enabled"
	LabelMinNodes    = "min_node_count"
	LabelMaxNodes    = "max_node_count"
)

// Event reasons on the Cluster, cluster-autoscaler's where it has one.
const (
	EventScaledUpGroup = "ScaledUpGroup"
	EventScaleDown     = "ScaleDown"
	EventNotScaledUp   = "NotScaledUp"
	EventScaleDownFail = "ScaleDownFailed"
)

// autoscalerRestartDelay: how long a cluster's autoscaler that failed
// (its API unreachable) waits before it starts again.
const autoscalerRestartDelay = 5 * time.Second

// faultPrefix keys the autoscaler's lines in the cluster's faults.
const faultPrefix = "autoscaler/"

// Defaults of AutoscaleConfig.
const (
	DefaultAutoscalePeriod    = 200 * time.Millisecond
	DefaultScaleUpDelay       = time.Second
	DefaultScaleDownUnneeded  = 30 * time.Second
	DefaultScaleDownThreshold = 0.5
)

// AutoscaleConfig tunes the host autoscaler (cluster-autoscaler's flags
// in brackets).
type AutoscaleConfig struct {
	// Period: how often each autoscaled cluster is looked at [scan-interval].
	Period time.Duration
	// ScaleUpDelay: how long a pod stays unschedulable before hosts are
	// added for it [new-pod-scale-up-delay].
	ScaleUpDelay time.Duration
	// ScaleDownUnneeded: how long a node stays underused, its pods
	// fitting elsewhere, before it is removed [scale-down-unneeded-time].
	ScaleDownUnneeded time.Duration
	// ScaleDownThreshold: a node whose pods request less than this
	// fraction of its CPU and memory is underused
	// [scale-down-utilization-threshold].
	ScaleDownThreshold float64
	// Recorder records the decisions as Events on the Clusters; nil: one
	// writing to Config.Kube.
	Recorder record.EventRecorder
}

func (a *AutoscaleConfig) setDefaults() {
	if a.Period <= 0 {
		a.Period = DefaultAutoscalePeriod
	}
	if a.ScaleUpDelay < 0 {
		a.ScaleUpDelay = 0
	} else if a.ScaleUpDelay == 0 {
		a.ScaleUpDelay = DefaultScaleUpDelay
	}
	if a.ScaleDownUnneeded <= 0 {
		a.ScaleDownUnneeded = DefaultScaleDownUnneeded
	}
	if a.ScaleDownThreshold <= 0 {
		a.ScaleDownThreshold = DefaultScaleDownThreshold
	}
}

// Cluster labels that tune a cluster's autoscaler (cluster-autoscaler's
// flags, underscored): durations ("30s", "2m") and a fraction.
const (
	LabelScaleUpDelay       = "new_pod_scale_up_delay"
	LabelScaleDownUnneeded  = "scale_down_unneeded_time"
	LabelScaleDownThreshold = "scale_down_utilization_threshold"
)

// clusterAutoscaleConfig is base with the cluster's labels applied; bad
// says which labels were ignored and why.
func clusterAutoscaleConfig(base AutoscaleConfig, labels map[string]string) (AutoscaleConfig, string) {
	var bad []string
	dur := func(key string, to *time.Duration, lowest time.Duration) {
		v, ok := labels[key]
		if !ok {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lowest {
			bad = append(bad, fmt.Sprintf("label %s=%q ignored: want a duration of at least %s", key, v, lowest))
			return
		}
		*to = d
	}
	dur(LabelScaleUpDelay, &base.ScaleUpDelay, 0)
	dur(LabelScaleDownUnneeded, &base.ScaleDownUnneeded, time.Second)
	if v, ok := labels[LabelScaleDownThreshold]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			bad = append(bad, fmt.Sprintf("label %s=%q ignored: want a fraction in (0, 1]", LabelScaleDownThreshold, v))
		} else {
			base.ScaleDownThreshold = f
		}
	}
	return base, strings.Join(bad, "; ")
}

// clusterAutoscaler is one cluster's loop and what it remembers.
type clusterAutoscaler struct {
	key    string // namespace/name
	uid    types.UID
	cancel func()
	done   chan struct{}

	kube  kubernetes.Interface
	pods  cache.Indexer
	nodes cache.Indexer
	pdbs  cache.Indexer

	// unschedSince: since when each pending pod has been seen unschedulable.
	unschedSince map[types.UID]time.Time
	// unneededSince: since when each node could have been removed.
	unneededSince map[string]time.Time
	// wrote: the generation of each group the loop last resized; the
	// group is left alone until the informer shows it.
	wrote map[string]int64
	// said: the last NotScaledUp message per group, not to repeat it.
	said map[string]string
	// podEvents records on the cluster's own pods, as cluster-autoscaler
	// does (TriggeredScaleUp, NotTriggerScaleUp); podSaid is the last
	// message per pod.
	podEvents record.EventRecorder
	podSaid   map[types.UID]string
}

// autoscaleLoop starts and stops the clusters' autoscalers as their
// groups ask for one, until ctx is done.
func (c *Controller) autoscaleLoop(ctx context.Context) {
	t := c.clock.NewTicker(c.cfg.Autoscale.Period)
	defer t.Stop()
	running := map[types.UID]*clusterAutoscaler{}
	defer func() {
		for _, a := range running {
			a.cancel()
			<-a.done
		}
	}()
	for {
		want := map[types.UID]*wharfv1.Cluster{}
		for _, obj := range c.clusters.GetStore().List() {
			cl, ok := obj.(*wharfv1.Cluster)
			if ok && cl.DeletionTimestamp == nil && healthChecked(cl.Status.Status) && cl.Status.APIAddress != "" && c.autoscaled(cl) {
				want[cl.UID] = cl
			}
		}
		for uid, a := range running {
			select {
			case <-a.done:
				delete(running, uid) // failed: started again below
				continue
			default:
			}
			if want[uid] == nil {
				a.cancel()
				<-a.done
				delete(running, uid)
				c.clearAutoscaleFaults(ctx, a.key)
			}
		}
		for uid, cl := range want {
			if running[uid] == nil {
				running[uid] = c.startAutoscaler(ctx, cl)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// autoscaled: one of the cluster's worker groups has autoscaling on.
func (c *Controller) autoscaled(cl *wharfv1.Cluster) bool {
	cls := clusterLabels(cl)
	for _, g := range c.groupsInCache(cl) {
		if g.Spec.Role != wharfv1.RoleMaster && autoscalingOn(g, cls) {
			return true
		}
	}
	return false
}

func (c *Controller) groupsInCache(cl *wharfv1.Cluster) []*wharfv1.NodeGroup {
	objs, err := c.groups.GetIndexer().ByIndex(wharf.ClusterIndex, cl.Namespace+"/"+cl.Name)
	if err != nil {
		return nil
	}
	var out []*wharfv1.NodeGroup
	for _, obj := range objs {
		if g, ok := obj.(*wharfv1.NodeGroup); ok && g.DeletionTimestamp == nil {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *wharfv1.NodeGroup) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// autoscalingOn: the group's label auto_scaling_enabled says so, or,
// when the group has none, the cluster's (Magnum's node groups inherit
// the cluster's labels).
func autoscalingOn(g *wharfv1.NodeGroup, clusterLabels map[string]string) bool {
	if v, ok := g.Spec.Labels[LabelAutoScaling]; ok {
		return v == "true"
	}
	return clusterLabels[LabelAutoScaling] == "true"
}

// groupBounds are a group's min and max (-1: none): the group's own, and
// for the default worker group without them, the cluster's labels
// min_node_count and max_node_count.
func groupBounds(g *wharfv1.NodeGroup, clusterLabels map[string]string) (int32, int32) {
	lo, hi := g.Spec.MinNodeCount, int32(-1)
	if g.Spec.MaxNodeCount != nil {
		hi = *g.Spec.MaxNodeCount
	}
	if g.Name == resources.DefaultWorkerGroup(g.Spec.Cluster) {
		label := func(k string) (int32, bool) {
			v, err := strconv.ParseInt(clusterLabels[k], 10, 32)
			return int32(v), err == nil && v >= 0
		}
		if v, ok := label(LabelMinNodes); ok && lo == 0 {
			lo = v
		}
		if v, ok := label(LabelMaxNodes); ok && hi < 0 {
			hi = v
		}
	}
	return lo, hi
}

func (c *Controller) startAutoscaler(ctx context.Context, cl *wharfv1.Cluster) *clusterAutoscaler {
	ctx, cancel := context.WithCancel(ctx)
	a := &clusterAutoscaler{
		key: cl.Namespace + "/" + cl.Name, uid: cl.UID, cancel: cancel, done: make(chan struct{}),
		unschedSince: map[types.UID]time.Time{}, unneededSince: map[string]time.Time{},
		wrote: map[string]int64{}, said: map[string]string{}, podSaid: map[types.UID]string{},
	}
	go func() {
		defer close(a.done)
		if err := c.runAutoscaler(ctx, a, cl); err != nil && ctx.Err() == nil {
			c.log.Warn("autoscaler stopped, starting again soon", "cluster", a.key, "err", err)
			select { // the loop starts it again once done is closed
			case <-ctx.Done():
			case <-c.clock.After(autoscalerRestartDelay):
			}
		}
	}()
	return a
}

// runAutoscaler watches the cluster's pods, nodes and disruption budgets
// and runs a round every Period.
func (c *Controller) runAutoscaler(ctx context.Context, a *clusterAutoscaler, cl *wharfv1.Cluster) error {
	cr, err := c.ensureCredentials(ctx, cl)
	if err != nil {
		return err
	}
	if a.kube, err = c.clusterAPI(cl, cr, cl.Status.APIAddress); err != nil {
		return err
	}
	var stop func()
	a.podEvents, stop = newRecorder(a.kube)
	defer stop()
	factory := informers.NewSharedInformerFactory(a.kube, 0)
	pods, nodes, pdbs := factory.Core().V1().Pods().Informer(), factory.Core().V1().Nodes().Informer(), factory.Policy().V1().PodDisruptionBudgets().Informer()
	a.pods, a.nodes, a.pdbs = pods.GetIndexer(), nodes.GetIndexer(), pdbs.GetIndexer()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, nodes.HasSynced, pdbs.HasSynced) {
		return fmt.Errorf("cluster %s: informers did not sync: %w", a.key, ctx.Err())
	}
	c.log.Info("autoscaler started", "cluster", a.key)
	t := c.clock.NewTicker(c.cfg.Autoscale.Period)
	defer t.Stop()
	for {
		if err := c.autoscaleRound(ctx, a); err != nil && ctx.Err() == nil {
			c.log.Warn("autoscaler round failed", "cluster", a.key, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// autoscaleRound looks at the cluster once and resizes at most one group.
func (c *Controller) autoscaleRound(ctx context.Context, a *clusterAutoscaler) error {
	obj, ok, _ := c.clusters.GetStore().GetByKey(a.key)
	cl, _ := obj.(*wharfv1.Cluster)
	if !ok || cl == nil || cl.UID != a.uid {
		return nil
	}
	now := c.clock.Now()
	v := a.view(c, cl)
	if v == nil {
		return nil
	}
	faults := map[string]string{}
	set, bad := clusterAutoscaleConfig(c.cfg.Autoscale, clusterLabels(cl))
	if bad != "" {
		faults[faultPrefix+"labels"] = bad
	}
	for _, g := range v.groups {
		if g.blocked != "" {
			faults[faultPrefix+g.short] = g.blocked
		}
	}

	// Once a pod has been unschedulable for long enough, hosts are added
	// for every unschedulable pod: a Deployment's pods come in bursts, and
	// one decision for them all is quicker than one per burst.
	var pending []*corev1.Pod
	seen := map[types.UID]bool{}
	due := false
	for _, p := range v.pods {
		if !unschedulable(p) {
			continue
		}
		seen[p.UID] = true
		pending = append(pending, p)
		since, ok := a.unschedSince[p.UID]
		if !ok {
			a.unschedSince[p.UID], since = now, now
		}
		due = due || now.Sub(since) >= set.ScaleUpDelay
	}
	maps.DeleteFunc(a.unschedSince, func(uid types.UID, _ time.Time) bool { return !seen[uid] })
	maps.DeleteFunc(a.podSaid, func(uid types.UID, _ string) bool { return !seen[uid] })
	if !due {
		pending = nil
	}

	if len(pending) > 0 {
		up := planScaleUp(v, pending)
		for group, why := range up.notScaled {
			key := group
			if key == "" {
				key = "pods"
			}
			faults[faultPrefix+key] = why
			if a.said[key] != why {
				a.said[key] = why
				c.event(cl, corev1.EventTypeWarning, EventNotScaledUp, why)
			}
		}
		for p, why := range up.waiting {
			a.tellPod(p, corev1.EventTypeNormal, "NotTriggerScaleUp", "pod didn't trigger scale-up: "+why)
		}
		if up.group != nil {
			g := up.group
			for _, p := range up.helped {
				a.tellPod(p, corev1.EventTypeNormal, "TriggeredScaleUp",
					fmt.Sprintf("pod triggered scale-up: [{%s %d->%d (max: %d)}]", g.short, g.count, g.count+up.add, g.max))
			}
			a.unneededSince = map[string]time.Time{} // the new hosts change what is needed
			msg := fmt.Sprintf("group %s %d -> %d: %d pods unschedulable", g.short, g.count, g.count+up.add, len(pending))
			if up.capped != "" {
				msg += " (" + up.capped + ")"
				faults[faultPrefix+g.short] = up.capped + fmt.Sprintf(": %d pods unschedulable", len(pending)-up.fitNow-up.pods)
			}
			if err := c.resizeGroupTo(ctx, a, cl, g.name, g.count+up.add, nil); err != nil {
				c.event(cl, corev1.EventTypeWarning, EventNotScaledUp, fmt.Sprintf("group %s: resize to %d: %v", g.short, g.count+up.add, err))
				return err
			}
			c.log.Info("autoscaler: scaled up", "cluster", a.key, "group", g.short, "from", g.count, "to", g.count+up.add, "pending", len(pending))
			c.event(cl, corev1.EventTypeNormal, EventScaledUpGroup, msg)
			delete(a.said, g.short)
			return c.setAutoscaleFaults(ctx, cl, faults)
		}
		if up.fitNow > 0 {
			// The scheduler has yet to place them where they fit: the
			// nodes are not as idle as they look.
			return c.setAutoscaleFaults(ctx, cl, faults)
		}
	}
	if len(seen) == 0 {
		clear(a.said)
	}

	// Pods no new host would help do not hold the scale-down.
	// Scale down: nodes removable for long enough.
	idle, _ := removable(v, asSettings{threshold: set.ScaleDownThreshold})
	// A busy group's nodes keep their timers: its resize says nothing
	// about them, and they go together once it is done.
	held := map[string]bool{}
	for _, g := range v.groups {
		for _, n := range g.nodes {
			held[n] = g.busy
		}
	}
	maps.DeleteFunc(a.unneededSince, func(n string, _ time.Time) bool { _, yes := idle[n]; return !yes && !held[n] })
	for n := range idle {
		if _, yes := a.unneededSince[n]; !yes {
			a.unneededSince[n] = now
		}
	}
	byGroup := dueForRemoval(v, idle, a.unneededSince, now, set.ScaleDownUnneeded)
	for _, g := range v.groups {
		names := byGroup[g]
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		to := g.count - int32(len(names))
		if err := c.resizeGroupTo(ctx, a, cl, g.name, to, names); err != nil {
			c.event(cl, corev1.EventTypeWarning, EventScaleDownFail, fmt.Sprintf("group %s: resize to %d: %v", g.short, to, err))
			return err
		}
		var use []string
		for _, n := range names {
			use = append(use, fmt.Sprintf("%s %d%%", n, int(idle[n]*100)))
			delete(a.unneededSince, n)
		}
		c.log.Info("autoscaler: scaling down", "cluster", a.key, "group", g.short, "from", g.count, "to", to, "nodes", names)
		c.event(cl, corev1.EventTypeNormal, EventScaleDown, fmt.Sprintf("group %s %d -> %d: removing %s (requests below %d%% of allocatable for %s)",
			g.short, g.count, to, strings.Join(use, ", "), int(set.ScaleDownThreshold*100), set.ScaleDownUnneeded))
		break // one group per round
	}
	return c.setAutoscaleFaults(ctx, cl, faults)
}

// view gathers what a round decides on; nil while the informer has not
// caught up with the loop's own last resize.
func (a *clusterAutoscaler) view(c *Controller, cl *wharfv1.Cluster) *asView {
	v := &asView{}
	for _, obj := range a.nodes.List() {
		if n, ok := obj.(*corev1.Node); ok {
			v.nodes = append(v.nodes, n)
		}
	}
	slices.SortFunc(v.nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	for _, obj := range a.pods.List() {
		if p, ok := obj.(*corev1.Pod); ok {
			v.pods = append(v.pods, p)
		}
	}
	for _, obj := range a.pdbs.List() {
		if b, ok := obj.(*policyv1.PodDisruptionBudget); ok {
			v.pdbs = append(v.pdbs, b)
		}
	}
	cls := clusterLabels(cl)
	var tmpl wharfv1.ClusterTemplateSpec
	_ = json.Unmarshal([]byte(cl.Annotations[templateAnnotation]), &tmpl) // for the flavor only
	all := c.groupsInCache(cl)
	for _, g := range all {
		if g.Spec.Role == wharfv1.RoleMaster || !autoscalingOn(g, cls) {
			continue
		}
		lo, hi := groupBounds(g, cls)
		ag := &asGroup{name: g.Name, short: strings.TrimPrefix(g.Name, cl.Name+"-"), count: g.Spec.NodeCount, min: lo, max: hi}
		prefix := resources.HostPrefix(g)
		ready := 0
		for _, n := range v.nodes {
			if _, ok := hostIndex(prefix, n.Name); ok {
				ag.nodes = append(ag.nodes, n.Name)
				if nodeReady(n) {
					ready++
				}
			}
		}
		ag.upcoming = max(0, int(g.Spec.NodeCount)-ready)
		ag.template = templateNode(g, all, v.nodes, tmpl.Flavor)
		inProgress := g.Status.Status == wharfv1.StatusUpdateInProgress || g.Status.Status == wharfv1.StatusCreateInProgress
		unseen := g.Generation < a.wrote[g.Name]
		ag.busy = unseen || inProgress || g.Status.ObservedGeneration < g.Generation || ag.upcoming > 0 ||
			cl.Status.Status == wharfv1.StatusUpdateInProgress || len(g.Spec.NodesToRemove) > 0
		switch {
		case hi < 0:
			ag.blocked = "no max nodes: set the group's max_node_count (--max-nodes), or the cluster label " + LabelMaxNodes
		case groupBlocked(g):
			ag.blocked = fmt.Sprintf("node group %s is %s: %s", ag.short, g.Status.Status, g.Status.StatusReason)
		}
		if unseen {
			return nil // the informer has not caught up with our own write
		}
		v.groups = append(v.groups, ag)
	}
	return v
}

// templateNode is the Node a new host of g would register: the resources
// of a node of the group (or of another worker group: one template makes
// every host of a cluster; or the template's flavor), with the group's
// labels and taints.
func templateNode(g *wharfv1.NodeGroup, groups []*wharfv1.NodeGroup, nodes []*corev1.Node, flavor wharfv1.Flavor) *corev1.Node {
	var model *corev1.Node
	pick := func(prefix string) {
		for _, n := range nodes {
			if _, ok := hostIndex(prefix, n.Name); ok && model == nil && nodeReady(n) {
				model = n
			}
		}
	}
	pick(resources.HostPrefix(g))
	for _, o := range groups {
		if o.Spec.Role != wharfv1.RoleMaster {
			pick(resources.HostPrefix(o))
		}
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}}}
	if model != nil {
		for k, v := range model.Labels {
			n.Labels[k] = v
		}
		n.Status.Allocatable = model.Status.Allocatable.DeepCopy()
		n.Status.Capacity = model.Status.Capacity.DeepCopy()
		// A node's labels from its own group go; g's come below.
		for _, k := range splitList(model.Annotations[annotationLabels]) {
			delete(n.Labels, k)
		}
	} else {
		l := corev1.ResourceList{corev1.ResourcePods: *kresource.NewQuantity(110, kresource.DecimalSI)}
		if q, err := kresource.ParseQuantity(flavor.CPU); err == nil {
			l[corev1.ResourceCPU] = q
		}
		if q, err := kresource.ParseQuantity(flavor.Memory); err == nil {
			l[corev1.ResourceMemory] = q
		}
		n.Status.Allocatable, n.Status.Capacity = l, l.DeepCopy()
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	out, _ := withGroup(n, g)
	return out
}

// resizeGroupTo sets a group's nodeCount (and the hosts to remove first)
// as `wharf cluster resize` does: the group, then, for the default worker
// group, the cluster's nodeCount.
func (c *Controller) resizeGroupTo(ctx context.Context, a *clusterAutoscaler, cl *wharfv1.Cluster, group string, n int32, remove []string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g, err := c.obj.groups.get(ctx, cl.Namespace, group)
		if err != nil {
			return err
		}
		g.Spec.NodeCount = n
		if remove != nil { // growing keeps those a removal under way names
			g.Spec.NodesToRemove = remove
		}
		out, err := c.obj.groups.update(ctx, g)
		if err == nil {
			a.wrote[group] = out.Generation
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("node group %s/%s: resize to %d: %w", cl.Namespace, group, n, err)
	}
	if group != resources.DefaultWorkerGroup(cl.Name) {
		return nil
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.obj.clusters.get(ctx, cl.Namespace, cl.Name)
		if err != nil || cur.UID != cl.UID || cur.Spec.NodeCount == n {
			return err
		}
		cur.Spec.NodeCount = n
		_, err = c.obj.clusters.update(ctx, cur)
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster %s: nodeCount %d: %w", a.key, n, err)
	}
	return nil
}

// setAutoscaleFaults makes the cluster's autoscaler/* faults those given.
func (c *Controller) setAutoscaleFaults(ctx context.Context, cl *wharfv1.Cluster, faults map[string]string) error {
	mine := func(st *wharfv1.ClusterStatus) map[string]string {
		out := map[string]string{}
		for k, v := range st.Faults {
			if strings.HasPrefix(k, faultPrefix) {
				out[k] = v
			}
		}
		return out
	}
	if maps.Equal(mine(&cl.Status), faults) {
		return nil
	}
	_, err := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		maps.DeleteFunc(st.Faults, func(k, _ string) bool { return strings.HasPrefix(k, faultPrefix) })
		if len(faults) > 0 && st.Faults == nil {
			st.Faults = map[string]string{}
		}
		maps.Copy(st.Faults, faults)
		if len(st.Faults) == 0 {
			st.Faults = nil
		}
	})
	return err
}

// clearAutoscaleFaults drops the autoscaler's faults of a cluster whose
// groups no longer autoscale.
func (c *Controller) clearAutoscaleFaults(ctx context.Context, key string) {
	obj, ok, _ := c.clusters.GetStore().GetByKey(key)
	if cl, _ := obj.(*wharfv1.Cluster); ok && cl != nil && cl.DeletionTimestamp == nil {
		if err := c.setAutoscaleFaults(ctx, cl, map[string]string{}); err != nil {
			c.log.Debug("autoscaler faults not cleared", "cluster", key, "err", err)
		}
	}
}

// tellPod records an event on a pod of the cluster, once per message.
func (a *clusterAutoscaler) tellPod(p *corev1.Pod, typ, reason, msg string) {
	if a.podEvents == nil || a.podSaid[p.UID] == msg {
		return
	}
	a.podSaid[p.UID] = msg
	a.podEvents.Event(p, typ, reason, msg)
}

// event records a decision on the Cluster.
func (c *Controller) event(cl *wharfv1.Cluster, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(cl, typ, reason, msg)
	}
}

// newRecorder makes a recorder of Events on the service's API.
func newRecorder(kube kubernetes.Interface) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	return b.NewRecorder(resources.NewScheme(), corev1.EventSource{Component: "wharf-cluster-autoscaler"}), b.Shutdown
}
