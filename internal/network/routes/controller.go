package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// DefaultResync is how often the routes are checked without a change of
// the Nodes, which repairs a route someone deleted.
const DefaultResync = 30 * time.Second

// Config says whose routes a Controller keeps, and where.
type Config struct {
	// NodeName is this node: its own pod CIDR needs no route.
	NodeName string
	Client   kubernetes.Interface
	// Netlink is a handle of the namespace the routes go into; nil: the
	// caller's own (the agent runs in its host's namespace).
	Netlink *netlink.Handle
	// ClusterCIDR is the range of every node's pod CIDR: the routes of
	// this package inside it are the Controller's, the rest (another
	// agent's on the same namespace) are left alone. Invalid: all.
	ClusterCIDR netip.Prefix
	// Guards are ranges held unreachable (Guard) while the Controller
	// runs, so that what no route of a node carries never leaves by the
	// default route: the cluster CIDR and the service CIDR. They stay when
	// Run returns; the host's teardown removes them.
	Guards []netip.Prefix
	// Resync defaults to DefaultResync.
	Resync time.Duration
	Logger *slog.Logger
}

// Controller keeps the routes to the other nodes' pod CIDRs.
type Controller struct {
	cfg Config
	log *slog.Logger
}

// New returns a Controller; Run starts it.
func New(cfg Config) *Controller {
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Controller{cfg: cfg, log: cfg.Logger}
}

// Run watches the Nodes and keeps the routes until ctx is done. Failing
// to apply a route is logged and retried at the next change or resync:
// one bad node must not stop the agent. The routes stay when it returns,
// so pods keep their connectivity across an agent restart.
func (c *Controller) Run(ctx context.Context) error {
	h := c.cfg.Netlink
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return fmt.Errorf("routes: netlink: %w", err)
		}
		defer h.Close()
	}
	a := &applier{h: h, log: c.log, scope: c.cfg.ClusterCIDR, skipped: map[netip.Prefix]string{}}

	factory := informers.NewSharedInformerFactory(c.cfg.Client, 0)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, obj any) { poke(obj) },
		DeleteFunc: poke,
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return nil // ctx done
	}
	tick := time.NewTicker(c.cfg.Resync)
	defer tick.Stop()
	var last error
	for {
		err := c.guard(h)
		if list, lerr := nodes.Lister().List(labels.Everything()); lerr != nil {
			err = errors.Join(err, lerr)
		} else {
			err = errors.Join(err, a.apply(Desired(c.cfg.NodeName, list)))
		}
		// Log a failure when it changes, not at every node heartbeat.
		if err != nil && (last == nil || err.Error() != last.Error()) {
			c.log.Warn("routes to other nodes' pods", "err", err)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// guard (re)makes the guard routes; someone may have deleted one.
func (c *Controller) guard(h *netlink.Handle) error {
	var errs []error
	for _, p := range c.cfg.Guards {
		if !Guarded(h, p) {
			errs = append(errs, Guard(h, p))
		}
	}
	return errors.Join(errs...)
}
