package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/agent/pods/probe"
	"wharf.dev/wharf/internal/agent/pods/volume"
	"wharf.dev/wharf/internal/wire"
)

// Config is what a Manager needs. NodeName, StateDir, Runtime, Images and
// Client are required.
type Config struct {
	// NodeName is this node; the Manager runs the pods bound to it.
	NodeName string
	// StateDir holds pods/ and logs/ (docs/agent.md).
	StateDir string
	// CgroupRoot is the cgroup (v1, cgroupfs) under which each pod gets
	// pod<uid>; default /wharf/<NodeName>.
	CgroupRoot string
	// ClusterDNS and ClusterDomain configure dnsPolicy ClusterFirst; with
	// no servers, pods get NodeLocalDNS's or else the node's resolv.conf.
	ClusterDNS    []string
	ClusterDomain string
	// NodeLocalDNS: the agent serves DNS at the first address of the
	// node's pod CIDR (the pods' gateway), which pods use when ClusterDNS
	// is empty.
	NodeLocalDNS bool
	// ResolvConf is the node's resolv.conf, what pods with dnsPolicy
	// Default get (the kubelet's --resolv-conf); "": no nameserver, as in
	// tests, which must never hand pods the machine's resolver.
	ResolvConf string
	// Services gives containers their services' environment variables;
	// nil: none.
	Services ServiceSource

	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	Client  kubernetes.Interface
	Logger  *slog.Logger
	Clock   clock.WithTicker

	// BackOffInitial is the wait before a container's second restart (the
	// first is immediate); waits double up to BackOffMax. Defaults 1s and
	// 5m. Failed image pulls wait 10s (or BackOffInitial if longer),
	// doubling up to BackOffMax.
	BackOffInitial time.Duration
	BackOffMax     time.Duration

	// ContainerLogMaxSize is the size at which a container's log is
	// rotated, ContainerLogMaxFiles how many files of it are kept, the
	// current one included; defaults 10 MiB and 5, the kubelet's.
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int

	// ImageGCHighPercent and ImageGCLowPercent are the image filesystem
	// usage above which unused images are removed and the usage to bring
	// it back to; defaults 85 and 80, the kubelet's.
	ImageGCHighPercent, ImageGCLowPercent int
}

// Timing of the relist and resync loops, and the kubelet's constants.
const (
	// defaultRelistPeriod: containerd 1.6 has no container events, so a
	// crash is seen at the next relist. The kubelet relists every second;
	// a quarter of that brings crash-to-restart from ~0.8 s to ~0.3 s for
	// two list calls of a few hundred microseconds each.
	defaultRelistPeriod = 250 * time.Millisecond
	defaultResyncPeriod = 10 * time.Second
	// imageBackOffInitial is the kubelet's first wait after a failed
	// pull; it leaves time to show ImagePullBackOff between attempts.
	imageBackOffInitial = 10 * time.Second
	// pendingResync bounds how long a pod with something pending waits.
	pendingResync = 3 * time.Second
	// claimResync: how soon a pod waiting for its claim's binding looks
	// again.
	claimResync = 300 * time.Millisecond
	// healthyRun resets a container's restart back-off.
	healthyRun = 10 * time.Minute
	// minGracePeriod gives a container at least this long after SIGTERM.
	minGracePeriod = 2 * time.Second
	maxErrorDelay  = 30 * time.Second
)

// Manager runs the pods bound to one node.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	clock     clock.WithTicker
	layout    layout
	dns       dnsSettings
	reader    *runtimeReader
	volumes   *volume.Manager
	objects   *objectCache
	tokens    *tokenCache
	runner    *probe.Runner
	probes    *probe.Manager
	images    imageGC
	evictions evictions
	fsStats   fsStats
	restarts  *backOff
	pulls     *backOff
	reasons   *reasons
	statuses  *statusCache
	recorder  record.EventRecorder

	// Knobs that tests change before Run.
	relistPeriod, resyncPeriod time.Duration
	cgroupFS                   string

	podInformer  cache.SharedIndexInformer
	nodeInformer cache.SharedIndexInformer

	// runCtx is Run's context, for workers that informer callbacks start.
	runCtx context.Context
	// ready is closed once the relist and resync loops tick.
	ready chan struct{}
	// syncs counts finished syncs, for tests that wait for one.
	syncs atomic.Int64

	mu               sync.Mutex
	workers          map[types.UID]*podWorker
	runtimeName      string
	runtimeNameKnown bool
	wg               sync.WaitGroup
}

// New returns a Manager for cfg; Run starts it.
func New(cfg Config) *Manager {
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/wharf/" + cfg.NodeName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.BackOffInitial <= 0 {
		cfg.BackOffInitial = time.Second
	}
	if cfg.BackOffMax <= 0 {
		cfg.BackOffMax = 5 * time.Minute
	}
	if cfg.ImageGCHighPercent <= 0 || cfg.ImageGCHighPercent > 100 {
		cfg.ImageGCHighPercent = defaultImageGCHighPercent
	}
	if cfg.ImageGCLowPercent <= 0 || cfg.ImageGCLowPercent > cfg.ImageGCHighPercent {
		cfg.ImageGCLowPercent = min(defaultImageGCLowPercent, cfg.ImageGCHighPercent)
	}
	if cfg.ContainerLogMaxSize <= 0 {
		cfg.ContainerLogMaxSize = defaultContainerLogMaxSize
	}
	if cfg.ContainerLogMaxFiles < 2 {
		cfg.ContainerLogMaxFiles = defaultContainerLogMaxFiles
	}
	m := &Manager{
		cfg:          cfg,
		log:          cfg.Logger,
		clock:        cfg.Clock,
		layout:       layout{stateDir: cfg.StateDir, cgroupRoot: cfg.CgroupRoot},
		dns:          dnsSettings{clusterDNS: cfg.ClusterDNS, clusterDomain: cfg.ClusterDomain},
		reader:       newRuntimeReader(cfg.Runtime),
		restarts:     newBackOff(cfg.Clock, cfg.BackOffInitial, cfg.BackOffMax, true),
		pulls:        newBackOff(cfg.Clock, max(imageBackOffInitial, cfg.BackOffInitial), cfg.BackOffMax, false),
		reasons:      newReasons(),
		statuses:     newStatusCache(),
		relistPeriod: defaultRelistPeriod,
		resyncPeriod: defaultResyncPeriod,
		cgroupFS:     "/sys/fs/cgroup",
		workers:      map[types.UID]*podWorker{},
		ready:        make(chan struct{}),
		runtimeName:  "containerd",
		fsStats:      statfs,
	}
	m.objects = newObjectCache(cfg.Client, m.log, m.wake)
	m.tokens = newTokenCache(cfg.Client, cfg.Clock)
	m.volumes = volume.New(m.layout.podsDir(), volumeSources{m.objects, m.tokens, claimSource{cfg.Client}}, volume.WithNode(cfg.NodeName, nil))
	m.runner = &probe.Runner{Exec: func(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
		return m.cfg.Runtime.ExecSync(ctx, id, cmd, timeout)
	}, Clock: cfg.Clock}
	return m
}

// Run runs the node's pods until ctx is done. It leaves them running when
// it returns: a new Manager adopts them.
func (m *Manager) Run(ctx context.Context) error {
	if m.cfg.NodeName == "" || m.cfg.StateDir == "" || m.cfg.Runtime == nil || m.cfg.Images == nil || m.cfg.Client == nil {
		return errors.New("pods: Config needs NodeName, StateDir, Runtime, Images and Client")
	}
	host, err := ReadResolvConf(m.cfg.ResolvConf)
	if err != nil {
		m.log.Warn("cannot read the node's resolv.conf; pods with dnsPolicy Default get no nameserver", "err", err)
		host = &runtimeapi.DNSConfig{}
	}
	m.dns.host = host
	m.runCtx = ctx
	if m.recorder == nil {
		broadcaster := newBroadcaster(ctx, m.cfg.Client)
		defer broadcaster.Shutdown()
		m.recorder = broadcaster.NewRecorder(eventScheme(), v1.EventSource{Component: "wharf-agent", Host: m.cfg.NodeName})
	}
	m.probes = probe.NewManager(ctx, m.clock, m.runner, m.log.With("component", "probe"), m.wake, m.unhealthy)
	defer m.probes.Wait()
	defer m.objects.stop()
	defer m.wg.Wait()

	m.startInformers(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), m.podInformer.HasSynced, m.nodeInformer.HasSynced) {
		return nil
	}
	m.log.Info("pod manager started", "node", m.cfg.NodeName, "stateDir", m.cfg.StateDir)

	// Pods are workers from the informer's events; a first relist adopts
	// or sweeps what the runtime holds.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.loop(ctx)
	}()
	<-ctx.Done()
	return nil
}

// node is this node's object, nil until seen.
func (m *Manager) node() *v1.Node {
	obj, ok, err := m.nodeInformer.GetStore().GetByKey(m.cfg.NodeName)
	if err != nil || !ok {
		return nil
	}
	return obj.(*v1.Node)
}

// hostIPs are the node's addresses that pods see as status.hostIP(s).
func (m *Manager) hostIPs() []string {
	n := m.node()
	if n == nil {
		return nil
	}
	var ips []string
	for _, t := range []v1.NodeAddressType{v1.NodeInternalIP, v1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				ips = append(ips, a.Address)
			}
		}
		if len(ips) > 0 {
			return ips
		}
	}
	return nil
}

func (m *Manager) allocatable() v1.ResourceList {
	if n := m.node(); n != nil {
		return n.Status.Allocatable
	}
	return nil
}

// dnsSettings are the pods' DNS settings, with the node-local server once
// the node has a pod CIDR.
func (m *Manager) dnsSettings() dnsSettings {
	s := m.dns
	if len(s.clusterDNS) == 0 && m.cfg.NodeLocalDNS {
		if n := m.node(); n != nil {
			if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
				s.clusterDNS = []string{wire.PodGateway(p).String()}
			}
		}
	}
	return s
}

func (m *Manager) memoryCapacity() int64 {
	if n := m.node(); n != nil {
		return n.Status.Capacity.Memory().Value()
	}
	return 0
}

// logDirFor finds the log directory of a pod known only by UID.
func (m *Manager) logDirsFor(uid types.UID) []string {
	matches, _ := filepath.Glob(filepath.Join(m.layout.logsDir(), "*_"+string(uid)))
	return matches
}

func podRef(pod *v1.Pod) string { return fmt.Sprintf("%s/%s", pod.Namespace, pod.Name) }
