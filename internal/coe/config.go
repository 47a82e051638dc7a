package coe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

// Defaults of Config's timing knobs.
const (
	DefaultHealthPeriod  = 3 * time.Second
	DefaultAutoHealAfter = 10 * time.Second
	DefaultDrainTimeout  = 30 * time.Second
	DefaultUpdateTimeout = 10 * time.Minute
	DefaultResyncPeriod  = time.Minute
	DefaultAPIPort       = 6443
	DefaultWorkers       = 16
)

// Config is what the controller needs. Kube, Wharf and Providers are required.
type Config struct {
	// Kube is the service's own API: the clusters' credentials Secrets
	// and the registry pull tokens in kube-system.
	Kube kubernetes.Interface
	// Wharf reaches the service's wharf.dev/v1 objects.
	Wharf *wharf.Client
	// Providers make hosts, by the name templates use in spec.provider.
	Providers map[string]provider.Provider
	// ProviderFor, when set, makes the provider of a template whose
	// provider is not in Providers: one that depends on the template
	// itself, like ssh's machines and key (namespace is the template's).
	ProviderFor func(ctx context.Context, namespace string, tmpl wharfv1.ClusterTemplateSpec) (provider.Provider, error)
	// RegistryURL is the service's image registry as hosts reach it
	// (https://<service address>:<port>); RegistryCA is the service's CA
	// (PEM). Workers get the --registry-* flags only when both are set.
	RegistryURL string
	RegistryCA  []byte

	Logger *slog.Logger
	Clock  clock.WithTicker

	// APIPort is the port of the clusters' API servers on their masters.
	APIPort int
	// HealthPeriod: how often each cluster's API and nodes are checked.
	HealthPeriod time.Duration
	// AutoHealAfter: how long a worker stays NotReady before it is
	// replaced, in clusters with auto_healing_enabled=true.
	AutoHealAfter time.Duration
	// DrainTimeout bounds waiting for a removed node's pods to go.
	DrainTimeout time.Duration
	// UpdateTimeout bounds one resize or repair.
	UpdateTimeout time.Duration
	// ResyncPeriod: every cluster is reconciled at least this often, so
	// drift (a host gone behind the service's back) is repaired.
	ResyncPeriod time.Duration
	// Workers is how many clusters are reconciled at once; a create holds
	// one worker for its duration.
	Workers int
	// Autoscale tunes the host autoscaler of node groups labelled
	// auto_scaling_enabled=true.
	Autoscale AutoscaleConfig
	// BackupDir keeps ClusterBackups' files (backup.go); "": none are taken.
	// BackupRetry: how long a backup waits for an unreachable cluster API
	// before it fails (default 1m).
	BackupDir   string
	BackupRetry time.Duration
}

func (cfg *Config) setDefaults() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HealthPeriod, DefaultHealthPeriod)
	def(&cfg.AutoHealAfter, DefaultAutoHealAfter)
	def(&cfg.DrainTimeout, DefaultDrainTimeout)
	def(&cfg.UpdateTimeout, DefaultUpdateTimeout)
	def(&cfg.ResyncPeriod, DefaultResyncPeriod)
	def(&cfg.BackupRetry, time.Minute)
	if cfg.APIPort == 0 {
		cfg.APIPort = DefaultAPIPort
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	cfg.Autoscale.setDefaults()
}

// ConfigFromService is the Config of a controller running in a `wharf
// service` process (controlplane.Options.ServiceController): its clients
// are the service's loopback ones, its registry the service's.
func ConfigFromService(env wire.ServiceEnv, providers map[string]provider.Provider) (Config, error) {
	kube, err := kubernetes.NewForConfig(env.Loopback)
	if err != nil {
		return Config{}, fmt.Errorf("cluster controller: %w", err)
	}
	wc, err := wharf.NewForConfig(env.Loopback)
	if err != nil {
		return Config{}, fmt.Errorf("cluster controller: %w", err)
	}
	return Config{
		Kube: kube, Wharf: wc, Providers: providers,
		RegistryURL: env.RegistryURL, RegistryCA: env.CACertPEM,
		Logger: env.Logger, BackupDir: serviceBackupDir(env),
	}, nil
}

// Controller reconciles Clusters and NodeGroups.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	clock clock.WithTicker
	obj   objects

	clusters cache.SharedIndexInformer
	groups   cache.SharedIndexInformer
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// creds and clients are per cluster uid: credentials never change,
	// and a cluster's API client is reused by syncs and health checks.
	creds   map[types.UID]*credentials
	clients map[types.UID]*clusterClient
	// ops cancels a cluster's running sync when the cluster is deleted.
	ops map[types.UID]context.CancelCauseFunc
	// health is what the health loop last saw of each cluster.
	health map[types.UID]*healthState
	// lbMu serialises the choice of clusters' load balancer blocks, and
	// guards lbFull, the clusters told that the pool is full, and
	// lbWritten, the block each cluster's pool ConfigMap holds.
	lbMu      sync.Mutex
	lbFull    map[types.UID]bool
	lbWritten map[types.UID]string
	// recorder records the autoscaler's decisions on the Clusters.
	recorder record.EventRecorder
	// bk takes and schedules ClusterBackups.
	bk *backups
}

// New returns a controller; Run starts it.
func New(cfg Config) *Controller {
	cfg.setDefaults()
	c := &Controller{
		cfg:   cfg,
		log:   cfg.Logger,
		clock: cfg.Clock,
		obj:   newObjects(cfg.Wharf),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "coe"}),
		creds:   map[types.UID]*credentials{},
		clients: map[types.UID]*clusterClient{},
		ops:     map[types.UID]context.CancelCauseFunc{},
		health:  map[types.UID]*healthState{},
	}
	c.clusters = cfg.Wharf.ClusterInformer("", cfg.ResyncPeriod)
	c.groups = cfg.Wharf.NodeGroupInformer("", cfg.ResyncPeriod)
	c.registerHandlers()
	c.bk = newBackups(c)
	return c
}
