// Package node keeps this host's Node object current, as the kubelet's
// node status manager and node lease controller do: it registers the Node
// (labels, capacity, addresses, system info, the agent's port), renews the
// Lease kube-node-lease/<node> every second, and reports the Ready
// condition: true once the container runtime answers and pod networking is
// configured for the pod CIDR the control plane assigned (spec.podCIDR).
//
// Status is written when it changes and at least every HeartbeatInterval,
// never more: the lease is the cheap liveness signal, the status the
// expensive one.
package node

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Intervals, as the kubelet's defaults.
const (
	// LeaseDuration is how long a renewal vouches for the node.
	LeaseDuration = 40 * time.Second
	// RenewInterval is how often the lease is renewed.
	RenewInterval = time.Second
	// HeartbeatInterval is the longest time between status writes.
	HeartbeatInterval = 10 * time.Second
	// SyncInterval is how often the status is computed (and written if it changed).
	SyncInterval = time.Second
	// LeaseNamespace holds the nodes' leases.
	LeaseNamespace = "kube-node-lease"
)

// Runtime is the part of CRI the node status needs.
type Runtime interface {
	Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error)
}

// NetworkFunc configures pod networking for the node's pod CIDR (the CNI
// configuration, forwarding rules). It is called once the CIDR is known,
// and again on each sync while it fails; the node is Ready only after it
// succeeded.
type NetworkFunc func(ctx context.Context, podCIDR string) error

// Config is what a Manager needs.
type Config struct {
	NodeName string
	// Hostname is reported as the Hostname address and label (default NodeName).
	Hostname string
	// NodeIP is reported as the InternalIP: where the API server reaches the agent.
	NodeIP string
	// Port is the agent's HTTPS port (daemonEndpoints.kubeletEndpoint.Port).
	Port int32
	// Version is reported as the kubelet version.
	Version string
	System  SystemInfo
	Client  kubernetes.Interface
	Runtime Runtime
	// Network may be nil: then the pod CIDR alone makes the network ready.
	Network NetworkFunc
	Clock   clock.WithTicker
	Logger  *slog.Logger
}

// Manager registers the node and keeps its status and lease current.
type Manager struct {
	cfg Config
	log *slog.Logger

	// Owned by the status loop.
	node      *corev1.Node // as last read or written
	lastWrite time.Time
	netCIDR   string // the CIDR Network last ran for
	netErr    error
	runtime   string // "<name>://<version>", from the last answer

	// Owned by the lease loop.
	lease *leaseState

	// Shared: the node's UID (for the lease's owner) and the pod CIDR the
	// watch saw, which may be newer than node's.
	uid       atomic.Value // types.UID
	seenCIDR  atomic.Value // string
	nodeEvent chan struct{}
}

// New returns a manager; Run starts it.
func New(cfg Config) *Manager {
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.NodeName
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, nodeEvent: make(chan struct{}, 1), lease: &leaseState{}}
	m.uid.Store(types.UID(""))
	m.seenCIDR.Store("")
	return m
}

// Run registers the node, then renews its lease and keeps its status
// current until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	m.log.Info("node status starting", "node", m.cfg.NodeName, "ip", m.cfg.NodeIP, "port", m.cfg.Port)
	m.watchNode(ctx)
	go m.runLease(ctx)
	t := m.cfg.Clock.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		if err := m.sync(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("node status update failed", "node", m.cfg.NodeName, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-m.nodeEvent:
		}
	}
}

// watchNode follows this Node through an informer, so a pod CIDR the
// control plane assigns is acted on at once, not at the next heartbeat.
func (m *Manager) watchNode(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", m.cfg.NodeName).String()
		}))
	seen := func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok || n.Name != m.cfg.NodeName {
			return
		}
		if n.Spec.PodCIDR != "" && m.seenCIDR.Swap(n.Spec.PodCIDR) != n.Spec.PodCIDR {
			select {
			case m.nodeEvent <- struct{}{}:
			default:
			}
		}
	}
	factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, obj any) { seen(obj) },
	})
	factory.Start(ctx.Done())
}

// podCIDR is the node's pod CIDR as last seen, "" until assigned.
func (m *Manager) podCIDR() string {
	if m.node != nil && m.node.Spec.PodCIDR != "" {
		return m.node.Spec.PodCIDR
	}
	return m.seenCIDR.Load().(string)
}
