package servicelb

import (
	"fmt"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/wire"
)

// Option changes how New builds the controller.
type Option func(*Controller)

// WithReserved keeps addresses of the pool from services: the cluster's
// API address lives in its load balancer block (docs/ha.md).
func WithReserved(addrs ...netip.Addr) Option {
	return func(c *Controller) {
		for _, a := range addrs {
			if c.reserved == nil {
				c.reserved = map[netip.Addr]bool{}
			}
			c.reserved[a] = true
		}
	}
}

// WithPoolConfigMap makes the pool follow the ConfigMap
// wire.LoadBalancerPoolConfigMap when it exists (else the pool given to New
// is used): the cluster service writes it, so that a cluster gets or
// changes its block without its server restarting. A pool there that
// overlaps one of forbidden (the service and pod ranges) or does not parse
// is refused with a log line, and the pool given to New stays. Only that
// ConfigMap is watched (an informer of its own, by name), not the
// cluster's others.
func WithPoolConfigMap(forbidden ...netip.Prefix) Option {
	return func(c *Controller) {
		c.forbidden = forbidden
		c.poolFactory = informers.NewSharedInformerFactoryWithOptions(c.client, 0,
			informers.WithNamespace(wire.LoadBalancerPoolNamespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", wire.LoadBalancerPoolConfigMap).String()
			}))
		c.synced = append(c.synced, controllerutil.AddEventHandlers(c.logger, controllerutil.EventHandler{
			Informer: c.poolFactory.Core().V1().ConfigMaps().Informer(),
			Handler: cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { c.poolConfigMapChanged(obj) },
				UpdateFunc: func(_, obj any) { c.poolConfigMapChanged(obj) },
				DeleteFunc: func(any) { c.setPool(c.static, "the pool ConfigMap is gone") },
			}})...)
	}
}

func (c *Controller) poolConfigMapChanged(obj any) {
	cm, ok := obj.(*v1.ConfigMap)
	if !ok || cm.Name != wire.LoadBalancerPoolConfigMap {
		return
	}
	p, err := parseConfigPool(cm.Data[wire.LoadBalancerPoolKey], c.forbidden)
	if err != nil {
		c.logger.Error("load balancer pool ConfigMap refused: keeping the pool of the server's flags",
			"configmap", cm.Namespace+"/"+cm.Name, "err", err)
		p = c.static
	}
	c.setPool(p, "from ConfigMap "+cm.Namespace+"/"+cm.Name)
}

// parseConfigPool parses a ConfigMap's CIDRs (comma- or space-separated).
func parseConfigPool(s string, forbidden []netip.Prefix) (pool, error) {
	prefixes, err := ParsePool(strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }))
	if err != nil {
		return nil, err
	}
	for _, p := range prefixes {
		for _, f := range forbidden {
			if p.Overlaps(f) {
				return nil, fmt.Errorf("load balancer CIDR %s overlaps %s, a range of the cluster's own", p, f)
			}
		}
	}
	return newPool(prefixes), nil
}

// setPool makes p the pool; if it changed, every LoadBalancer service is
// looked at again (addresses outside the new pool are replaced, services
// that waited for one may get one).
func (c *Controller) setPool(p pool, why string) {
	c.mu.Lock()
	old := *c.cur.Load()
	changed := old.String() != p.String()
	if changed {
		c.cur.Store(&p)
	}
	c.mu.Unlock()
	if !changed {
		return
	}
	c.logger.Info("load balancer pool changed", "pool", p.String(), "addresses", p.size(), "was", old.String(), "why", why)
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if relevant(svc) {
			c.queue.Add(keyOf(svc))
		}
	}
}
