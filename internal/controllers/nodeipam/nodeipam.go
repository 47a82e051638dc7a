// Package nodeipam gives every node a pod CIDR (spec.podCIDR) carved out of
// the cluster CIDR, like Kubernetes' node IPAM controller with its range
// allocator: agents wait for it before they write their CNI configuration,
// and the pod addresses of different hosts then never overlap.
//
// The set of CIDRs in use is derived from the nodes themselves, never kept
// as separate state, so a restarted controller (or another server taking
// over) sees the truth. A deleted node's CIDR is free once the node is gone.
// CIDRs handed out but not yet visible in the informer cache are remembered
// until the cache catches up, so a stale cache never hands one CIDR to two
// nodes.
package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// DefaultMaskSize is the prefix length of each node's pod CIDR: a /24
// holds 254 pod addresses, more than the 110 pods a node runs.
const DefaultMaskSize = 24

// ErrExhausted is returned when every CIDR of the cluster range is taken.
var ErrExhausted = errors.New("no pod CIDR left in the cluster CIDR")

// Controller assigns pod CIDRs to nodes.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	cluster  netip.Prefix
	maskSize int

	nodes  corelisters.NodeLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]

	// mu guards pending and serialises choosing, so that two workers never
	// pick the same free CIDR.
	mu sync.Mutex
	// pending are CIDRs this controller gave (or is giving) nodes that the
	// cache still shows without one, by node name.
	pending map[string]netip.Prefix
}

// Option configures a Controller.
type Option func(*Controller)

// WithMaskSize sets the prefix length of the CIDR each node gets.
func WithMaskSize(bits int) Option { return func(c *Controller) { c.maskSize = bits } }

// New builds the controller on factory's node informer. clusterCIDR must
// be an IPv4 prefix shorter than the mask size (Check tells).
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, clusterCIDR netip.Prefix, opts ...Option) *Controller {
	c := &Controller{
		logger:   logger.With("controller", "nodeipam"),
		client:   client,
		cluster:  clusterCIDR.Masked(),
		maskSize: DefaultMaskSize,
		pending:  map[string]netip.Prefix{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"}),
	}
	for _, o := range opts {
		o(c)
	}
	inf := factory.Core().V1().Nodes()
	c.nodes = inf.Lister()
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.nodeChanged,
		UpdateFunc: func(_, obj any) { c.nodeChanged(obj) },
		DeleteFunc: c.nodeDeleted,
	})
	if err != nil {
		c.logger.Error("cannot add event handler", "err", err)
		c.synced = append(c.synced, func() bool { return false })
	} else {
		c.synced = append(c.synced, reg.HasSynced)
	}
	return c
}

// Check reports whether a cluster CIDR and mask size can be used: IPv4
// only, and each node's CIDR must fit in the cluster's with room for at
// least a few pods.
func Check(clusterCIDR netip.Prefix, maskSize int) error {
	if !clusterCIDR.IsValid() || !clusterCIDR.Addr().Is4() {
		return fmt.Errorf("cluster CIDR %v: must be an IPv4 prefix", clusterCIDR)
	}
	if maskSize < clusterCIDR.Bits() || maskSize > 30 {
		return fmt.Errorf("node CIDR mask size %d: must be between the cluster CIDR's %d and 30", maskSize, clusterCIDR.Bits())
	}
	return nil
}

func (c *Controller) nodeChanged(obj any) {
	if n, ok := obj.(*v1.Node); ok && n.Spec.PodCIDR == "" {
		c.queue.Add(n.Name)
	}
}

// nodeDeleted releases the node's CIDR: nodes that found the range full
// may get it now.
func (c *Controller) nodeDeleted(obj any) {
	n, ok := controllerutil.DeletedObject[*v1.Node](obj)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.pending, n.Name)
	c.mu.Unlock()
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	for _, other := range nodes {
		c.nodeChanged(other)
	}
}

// Run assigns CIDRs until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.queue.ShutDown()
	c.logger.Info("starting", "clusterCIDR", c.cluster, "maskSize", c.maskSize)
	if err := Check(c.cluster, c.maskSize); err != nil {
		c.logger.Error("not assigning pod CIDRs", "err", err)
		return
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	controllerutil.RunWorkers(ctx, c.logger, c.queue, workers, c.sync,
		controllerutil.KeyAttr("node"), controllerutil.FailureMessage("cannot assign pod CIDR, retrying"))
}

// sync gives node name a CIDR if it has none.
func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.pending, name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %q: %w", name, err)
	}
	if node.Spec.PodCIDR != "" {
		return nil
	}
	cidr, err := c.choose(name)
	if err != nil {
		return fmt.Errorf("node %q: %w", name, err)
	}
	update := node.DeepCopy()
	update.Spec.PodCIDR = cidr.String()
	update.Spec.PodCIDRs = []string{cidr.String()}
	// An update, not a patch: it carries the cache's resourceVersion, so a
	// node changed meanwhile (perhaps given a CIDR elsewhere) is a conflict
	// and is looked at again. The pending CIDR stays reserved for the retry.
	if _, err := c.client.CoreV1().Nodes().Update(ctx, update, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			c.mu.Lock()
			delete(c.pending, name)
			c.mu.Unlock()
			return nil
		}
		return fmt.Errorf("set pod CIDR %s on node %q: %w", cidr, name, err)
	}
	c.logger.Info("assigned pod CIDR", "node", name, "podCIDR", cidr)
	return nil
}

// choose returns the CIDR for node name: the one already pending for it,
// else the first free one.
func (c *Controller) choose(name string) (netip.Prefix, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list nodes: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	used := map[netip.Prefix]bool{}
	waiting := map[string]bool{}
	for _, n := range nodes {
		if n.Spec.PodCIDR == "" {
			waiting[n.Name] = true
			continue
		}
		if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
			used[p.Masked()] = true
		}
	}
	for node, p := range c.pending {
		// The cache shows the node with its CIDR by now, or without the node
		// (deleted, or not yet seen): only nodes still waiting keep theirs.
		if !waiting[node] {
			delete(c.pending, node)
			continue
		}
		used[p] = true
	}
	if p, ok := c.pending[name]; ok {
		return p, nil
	}
	p, ok := firstFree(c.cluster, c.maskSize, used)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%w (%s in /%d blocks, %d in use)", ErrExhausted, c.cluster, c.maskSize, len(used))
	}
	c.pending[name] = p
	return p, nil
}

// firstFree returns the lowest block of cluster with prefix length bits
// that used does not hold. cluster must be IPv4 (see Check).
func firstFree(cluster netip.Prefix, bits int, used map[netip.Prefix]bool) (netip.Prefix, bool) {
	a4 := cluster.Addr().As4()
	base := uint32(a4[0])<<24 | uint32(a4[1])<<16 | uint32(a4[2])<<8 | uint32(a4[3])
	count := uint64(1) << (bits - cluster.Bits())
	step := uint64(1) << (32 - bits)
	for i := range count {
		v := base + uint32(i*step)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
		if !used[p] {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
