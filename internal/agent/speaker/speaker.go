// Package speaker makes the node agents answer for their cluster's load
// balancer addresses on the host network, in layer 2, as MetalLB's
// speakers and kube-vip do: the servicelb controller writes an address
// into a LoadBalancer Service's status, every node's proxy takes traffic
// for it, and exactly one live node holds it on its link (a /32, answered
// by the kernel's ARP) and announces it with gratuitous ARP, so the
// provider network sends the address's traffic there.
//
// Which node: every agent computes the same owner of each address by
// rendezvous hashing (announce.Owner) over the candidates, the nodes it
// hears alive (announce.Members: UDP heartbeats each 100 ms, dead after
// 0.7 s unheard) that are not excluded from load balancers and, for
// externalTrafficPolicy Local, have a ready endpoint of the service. When
// the holder dies its peers stop hearing it within about a second, the
// next node in each address's order takes it and announces it: the
// failover does not wait for the node's Lease (5 s) or for the API.
//
// Each agent publishes where it hears heartbeats in its Node's
// HeartbeatAnnotation; nodes without one (agents of older releases)
// never hold an address.
package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	agentnode "wharf.dev/wharf/internal/agent/node"
	"wharf.dev/wharf/internal/network/announce"
	"wharf.dev/wharf/internal/wire"
)

const (
	// HeartbeatAnnotation on a Node holds "ip:port", where its agent
	// hears its peers' heartbeats.
	HeartbeatAnnotation = "wharf.dev/heartbeat"
	// ExcludeLabel keeps a node from holding load balancer addresses
	// (Kubernetes' well-known label).
	ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"
)

// Config says how a Speaker runs.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	// NodeIP is the node's address; its link holds the addresses.
	NodeIP netip.Addr
	// StateFile records the addresses this agent put on the link.
	StateFile string
	// Cluster identifies the cluster in heartbeats (e.g. a hash of its CA).
	Cluster string
	// Interval and Timeout of the heartbeats (0: announce's defaults).
	Interval, Timeout time.Duration
	Logger            *slog.Logger
}

// Speaker holds the node's share of the cluster's load balancer
// addresses. It is a services.Sink: feed it the services and endpoint
// slices, and run it.
type Speaker struct {
	cfg   Config
	log   *slog.Logger
	dirty chan struct{}

	mu       sync.Mutex
	services map[types.NamespacedName]lbService
	slices   map[types.NamespacedName]sliceNodes
	nodes    map[string]node
}

type lbService struct {
	ips   []netip.Addr
	local bool // externalTrafficPolicy Local
}

// sliceNodes are the nodes with a usable endpoint in an endpoint slice.
type sliceNodes struct {
	service string
	nodes   []string
}

type node struct {
	heartbeat netip.AddrPort // invalid: none published
	excluded  bool           // ExcludeLabel, NotReady or being deleted
}

// New returns a Speaker; Run runs it.
func New(cfg Config) *Speaker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Speaker{cfg: cfg, log: cfg.Logger, dirty: make(chan struct{}, 1),
		services: map[types.NamespacedName]lbService{}, slices: map[types.NamespacedName]sliceNodes{}, nodes: map[string]node{}}
}

func (s *Speaker) markDirty() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// UpdateService notes a service's load balancer addresses.
func (s *Speaker) UpdateService(svc *corev1.Service) {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	var lb lbService
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			if a, err := netip.ParseAddr(in.IP); err == nil && a.Is4() && !slices.Contains(lb.ips, a) {
				lb.ips = append(lb.ips, a)
			}
		}
		lb.local = svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.services[key]
	if len(lb.ips) == 0 {
		delete(s.services, key)
	} else {
		s.services[key] = lb
	}
	if had != (len(lb.ips) > 0) || old.local != lb.local || !slices.Equal(old.ips, lb.ips) {
		s.markDirty()
	}
}

// DeleteService forgets a service.
func (s *Speaker) DeleteService(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if _, ok := s.services[key]; ok {
		delete(s.services, key)
		s.markDirty()
	}
}

// UpdateEndpointSlice notes which nodes have a usable endpoint.
func (s *Speaker) UpdateEndpointSlice(es *discoveryv1.EndpointSlice) {
	sn := sliceNodes{service: es.Labels[discoveryv1.LabelServiceName]}
	for _, ep := range es.Endpoints {
		c := ep.Conditions
		if (c.Ready != nil && !*c.Ready) || (c.Terminating != nil && *c.Terminating) || ep.NodeName == nil {
			continue
		}
		if !slices.Contains(sn.nodes, *ep.NodeName) {
			sn.nodes = append(sn.nodes, *ep.NodeName)
		}
	}
	slices.Sort(sn.nodes)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
	old, had := s.slices[key]
	s.slices[key] = sn
	if !had || old.service != sn.service || !slices.Equal(old.nodes, sn.nodes) {
		s.markDirty()
	}
}

// DeleteEndpointSlice forgets an endpoint slice.
func (s *Speaker) DeleteEndpointSlice(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.slices, types.NamespacedName{Namespace: namespace, Name: name})
	s.markDirty()
}

// heartbeatKey reads the key that signs the cluster's heartbeats, retrying
// while the API does not answer; nil if the server made none (a server
// older than signed heartbeats), with a warning: heartbeats then go
// unsigned, as that server's other agents send them.
func (s *Speaker) heartbeatKey(ctx context.Context) ([]byte, error) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		sec, err := s.cfg.Client.CoreV1().Secrets(wire.HeartbeatKeyNamespace).Get(ctx, wire.HeartbeatKeySecret, metav1.GetOptions{})
		switch {
		case err == nil && len(sec.Data[wire.HeartbeatKeyField]) >= 16:
			return sec.Data[wire.HeartbeatKeyField], nil
		case err == nil:
			return nil, fmt.Errorf("secret %s/%s: no key of 16 bytes or more under %q", wire.HeartbeatKeyNamespace, wire.HeartbeatKeySecret, wire.HeartbeatKeyField)
		case apierrors.IsNotFound(err):
			s.log.Warn("heartbeats unsigned: the server made no heartbeat key", "secret", wire.HeartbeatKeyNamespace+"/"+wire.HeartbeatKeySecret)
			return nil, nil
		}
		s.log.Debug("reading the heartbeat key, retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// Run heartbeats with the other nodes and holds this node's addresses
// until ctx is done; then it gives them up (the other nodes take them
// within a heartbeat timeout).
func (s *Speaker) Run(ctx context.Context) error {
	key, err := s.heartbeatKey(ctx)
	if err != nil {
		return fmt.Errorf("load balancer speaker: %w", err)
	}
	members, err := announce.NewMembers(announce.MembersConfig{
		Self: s.cfg.NodeName, Bind: netip.AddrPortFrom(s.cfg.NodeIP, 0), Cluster: s.cfg.Cluster,
		Interval: s.cfg.Interval, Timeout: s.cfg.Timeout, Key: key, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("load balancer speaker: %w", err)
	}
	vips, err := announce.NewVIPs(announce.VIPConfig{NodeIP: s.cfg.NodeIP, StateFile: s.cfg.StateFile, Logger: s.log})
	if err != nil {
		return fmt.Errorf("load balancer speaker: %w", err)
	}
	defer func() {
		if err := vips.RemoveAll(); err != nil {
			s.log.Warn("load balancer addresses not all removed", "err", err)
		}
		vips.Close()
	}()
	factory := informers.NewSharedInformerFactory(s.cfg.Client, 0)
	inf := factory.Core().V1().Nodes().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.nodesChanged(members, inf.GetStore()) },
		UpdateFunc: func(_, _ any) { s.nodesChanged(members, inf.GetStore()) },
		DeleteFunc: func(any) { s.nodesChanged(members, inf.GetStore()) },
	}); err != nil {
		return fmt.Errorf("load balancer speaker: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	errc := make(chan error, 1)
	go func() { errc <- members.Run(ctx) }()
	go agentnode.Annotate(ctx, s.cfg.Client, s.cfg.NodeName, HeartbeatAnnotation, netip.AddrPortFrom(s.cfg.NodeIP, uint16(members.Port())).String(), s.log)

	var held []netip.Addr
	for {
		announceAll := false
		select {
		case <-ctx.Done():
			<-errc
			return nil
		case err := <-errc:
			return fmt.Errorf("load balancer speaker: heartbeats: %w", err)
		case <-s.dirty:
		case <-members.Changes():
			// Whoever held an address before may have answered ARP
			// meanwhile: the holders say again where theirs are.
			announceAll = true
		}
		want := s.desired(members.AliveSet())
		if !slices.Equal(want, held) {
			s.log.Info("load balancer addresses held", "addresses", want)
		}
		if err := vips.Set(ctx, want); err != nil {
			s.log.Warn("load balancer addresses not set, retrying", "err", err)
			s.retryLater(ctx)
			continue
		}
		if announceAll {
			for _, a := range vips.Held() {
				vips.Announce(a)
			}
		}
		held = want
	}
}

// retryLater marks the state dirty after a second.
func (s *Speaker) retryLater(ctx context.Context) {
	time.AfterFunc(time.Second, func() {
		if ctx.Err() == nil {
			s.markDirty()
		}
	})
}

// nodesChanged reads the nodes again: candidates and heartbeat peers.
func (s *Speaker) nodesChanged(members *announce.Members, store cache.Store) {
	nodes := map[string]node{}
	peers := map[string]netip.AddrPort{}
	for _, obj := range store.List() {
		n, ok := obj.(*corev1.Node)
		if !ok {
			continue
		}
		nd := node{excluded: excluded(n)}
		if ap, err := netip.ParseAddrPort(n.Annotations[HeartbeatAnnotation]); err == nil {
			nd.heartbeat = ap
			if n.Name != s.cfg.NodeName {
				peers[n.Name] = ap
			}
		}
		nodes[n.Name] = nd
	}
	members.SetPeers(peers)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !maps.Equal(s.nodes, nodes) {
		s.nodes = nodes
		s.markDirty()
	}
}

// excluded: a node that must not hold addresses.
func excluded(n *corev1.Node) bool {
	if _, ok := n.Labels[ExcludeLabel]; ok || n.DeletionTimestamp != nil {
		return true
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionFalse {
			return true
		}
	}
	return false
}

// desired are the addresses this node holds, sorted.
func (s *Speaker) desired(alive map[string]bool) []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	withEndpoints := map[types.NamespacedName]map[string]bool{}
	for key, sn := range s.slices {
		svc := types.NamespacedName{Namespace: key.Namespace, Name: sn.service}
		if withEndpoints[svc] == nil {
			withEndpoints[svc] = map[string]bool{}
		}
		for _, n := range sn.nodes {
			withEndpoints[svc][n] = true
		}
	}
	var want []netip.Addr
	for key, svc := range s.services {
		var candidates []string
		for name, n := range s.nodes {
			if n.excluded || !n.heartbeat.IsValid() || !alive[name] || (svc.local && !withEndpoints[key][name]) {
				continue
			}
			candidates = append(candidates, name)
		}
		for _, ip := range svc.ips {
			if announce.Owner(ip, candidates) == s.cfg.NodeName && !slices.Contains(want, ip) {
				want = append(want, ip)
			}
		}
	}
	slices.SortFunc(want, netip.Addr.Compare)
	return want
}
