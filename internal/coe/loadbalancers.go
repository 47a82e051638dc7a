package coe

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

// Load balancer addresses: the clusters of a service share one provider
// network, so an address must belong to one cluster only. Each cluster
// gets a block of its template's pool when it is made (its status keeps
// it), and its server hands addresses of that block to LoadBalancer
// services (`wharf server --lb-cidr`, the servicelb controller). The
// service decides nothing per service: an address answers as soon as the
// cluster's own controller and agents act, whether the service is up or
// not.

// lbBlockBits is the size of a cluster's block: 16 addresses.
const lbBlockBits = 28

// lbPoolOf is the pool of a cluster's template: its own, or the
// provider's default; invalid when there is none.
func lbPoolOf(e *env) (netip.Prefix, error) {
	pool := e.tmpl.Network.LoadBalancerCIDR
	if p, ok := e.prov.(provider.LoadBalancerPooler); ok && pool == "" {
		pool = p.LoadBalancerPool()
	}
	if pool == "" {
		return netip.Prefix{}, nil
	}
	pfx, err := netip.ParsePrefix(pool)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("load balancer pool %q: %w", pool, err)
	}
	return pfx.Masked(), nil
}

// ensureLoadBalancerBlock gives the cluster a free block of its pool,
// once; a cluster whose template has no pool, or whose pool is full,
// gets none (its LoadBalancer services stay pending, with an event
// saying there is no pool), which is logged but fails nothing.
func (c *Controller) ensureLoadBalancerBlock(ctx context.Context, cl *wharfv1.Cluster, e *env) (*wharfv1.Cluster, error) {
	if cl.Status.LoadBalancerCIDR != "" {
		return cl, nil
	}
	pool, err := lbPoolOf(e)
	if err != nil || !pool.IsValid() {
		return cl, err
	}
	// One choice at a time, from the clusters as the API has them now:
	// two clusters made at once never get one block.
	c.lbMu.Lock()
	defer c.lbMu.Unlock()
	all, err := c.obj.clusters.list(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	var taken []netip.Prefix
	for _, o := range all.Items {
		if b, err := netip.ParsePrefix(o.Status.LoadBalancerCIDR); err == nil && o.UID != cl.UID {
			taken = append(taken, b)
		}
	}
	block, ok := freeBlock(pool, taken)
	if !ok {
		if c.lbFull[cl.UID] {
			return cl, nil // said once
		}
		if c.lbFull == nil {
			c.lbFull = map[types.UID]bool{}
		}
		c.lbFull[cl.UID] = true
		c.log.Warn("no free load balancer block: the cluster's LoadBalancer services will stay pending",
			"cluster", cl.Namespace+"/"+cl.Name, "pool", pool, "clusters", len(taken))
		return cl, nil
	}
	return c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) { st.LoadBalancerCIDR = block.String() })
}

// ensurePoolConfigMap writes the cluster's block into the ConfigMap its
// server's servicelb controller follows (wire.LoadBalancerPoolConfigMap),
// so that a block given after the cluster was made, or changed, is used
// without restarting the server. Best effort: an API that does not answer
// now is written at a later sync. Once written, a cluster's block is not
// read back at every sync (the service restarted reads it once).
func (c *Controller) ensurePoolConfigMap(ctx context.Context, kube kubernetes.Interface, cl *wharfv1.Cluster) {
	block := cl.Status.LoadBalancerCIDR
	c.lbMu.Lock()
	done := c.lbWritten[cl.UID] == block
	c.lbMu.Unlock()
	if block == "" || done {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cms := kube.CoreV1().ConfigMaps(wire.LoadBalancerPoolNamespace)
	cur, err := cms.Get(ctx, wire.LoadBalancerPoolConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: wire.LoadBalancerPoolConfigMap, Namespace: wire.LoadBalancerPoolNamespace},
			Data:       map[string]string{wire.LoadBalancerPoolKey: block},
		}, metav1.CreateOptions{})
	case err == nil && cur.Data[wire.LoadBalancerPoolKey] != block:
		cur = cur.DeepCopy()
		if cur.Data == nil {
			cur.Data = map[string]string{}
		}
		cur.Data[wire.LoadBalancerPoolKey] = block
		_, err = cms.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		c.log.Debug("cannot write the cluster's load balancer pool ConfigMap yet", "cluster", cl.Namespace+"/"+cl.Name, "err", err)
		return
	}
	c.lbMu.Lock()
	defer c.lbMu.Unlock()
	if c.lbWritten == nil {
		c.lbWritten = map[types.UID]string{}
	}
	c.lbWritten[cl.UID] = block
}

// freeBlock returns the first block of pool (a /28, or pool itself when
// smaller) that overlaps none of taken.
func freeBlock(pool netip.Prefix, taken []netip.Prefix) (netip.Prefix, bool) {
	bits := max(pool.Bits(), lbBlockBits)
	a4 := pool.Masked().Addr().As4()
	first := binary.BigEndian.Uint32(a4[:])
	for i := range uint64(1) << (bits - pool.Bits()) {
		binary.BigEndian.PutUint32(a4[:], first+uint32(i<<(32-bits)))
		b := netip.PrefixFrom(netip.AddrFrom4(a4), bits)
		if !slices.ContainsFunc(taken, b.Overlaps) {
			return b, true
		}
	}
	return netip.Prefix{}, false
}

// loadBalancers lists a cluster's LoadBalancer services for its status.
func loadBalancers(svcs []corev1.Service) []wharfv1.LoadBalancer {
	var out []wharfv1.LoadBalancer
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		lb := wharfv1.LoadBalancer{Service: s.Namespace + "/" + s.Name}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				lb.Address = in.IP
				break
			}
		}
		for _, p := range s.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			lb.Ports = append(lb.Ports, strconv.Itoa(int(p.Port))+"/"+string(proto))
		}
		out = append(out, lb)
	}
	return out
}
