// Package controlplane assembles a Wharf server: certificates and tokens,
// etcd (embedded or external), the API server, and the controllers and
// scheduler that work through it.
package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/controllers/nodeipam"
	"wharf.dev/wharf/internal/controllers/servicelb"
	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/resourcemetrics"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/satoken"
	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/wire"
)

// Options configure a server.
type Options struct {
	Logger  *slog.Logger
	DataDir string
	// Listen is the HTTPS address, e.g. 0.0.0.0:6443 (port 0: any free port).
	Listen string
	// AdvertiseAddress is the address other hosts reach this server at; it
	// goes in the serving certificate and the kubeconfig files.
	AdvertiseAddress string
	TLSSANs          []string
	// EtcdServers selects an external etcd cluster instead of the embedded one.
	EtcdServers []string
	// EtcdPeerAddress (host:port) makes the embedded member one of a
	// multi-master cluster's (members.go, docs/ha.md): peers and clients
	// reach it with TLS there and at the port below. EtcdName names it
	// (default: the host). Join lists API URLs of the cluster's servers
	// its member joins through on a first start; none: it starts a new
	// cluster. EtcdElectionTimeout: storage.DefaultElectionTimeout if 0.
	EtcdPeerAddress     string
	EtcdName            string
	Join                []string
	EtcdElectionTimeout time.Duration
	// VIP is the cluster's API address: the server whose member leads
	// etcd holds it (a multi-master cluster's api_address).
	VIP string
	// EtcdTLS: the external etcd's client TLS files (etcdtls.go).
	EtcdTLS EtcdTLS
	// NodeGracePeriod: a node whose lease is not renewed for this long is
	// unreachable. EvictionTimeout: its pods are evicted after this. Zero
	// keeps the defaults, 5 s and 3 s (the nodelifecycle package comment
	// says why).
	NodeGracePeriod time.Duration
	EvictionTimeout time.Duration
	// MetricsInterval is how often agents' resource usage is scraped
	// (default resourcemetrics.DefaultInterval, 15 s); HPASyncPeriod how
	// often each HorizontalPodAutoscaler is evaluated (default 15 s).
	// HPADownscaleStabilization is the scale-down window of HPAs whose
	// behavior sets none (default 5 min).
	MetricsInterval           time.Duration
	HPASyncPeriod             time.Duration
	HPADownscaleStabilization time.Duration
	// CompactionInterval: how often etcd history older than one interval is discarded.
	CompactionInterval time.Duration
	// ServiceCIDR is where services' cluster IPs come from (default
	// wire.DefaultServiceCIDR).
	ServiceCIDR string
	// ClusterCIDR is where nodes' pod CIDRs come from (default
	// wire.DefaultClusterCIDR), NodeCIDRMaskSize long each (0:
	// nodeipam.DefaultMaskSize).
	ClusterCIDR      string
	NodeCIDRMaskSize int
	// LoadBalancerPool: CIDRs the servicelb controller gives LoadBalancer
	// services addresses from; empty: none.
	LoadBalancerPool []string
	// DisableControllers serves the API only (benchmarks of the API alone).
	DisableControllers bool
	// LeaderElect*: the timings of the controllers' lease (leader.go);
	// zero: leaderelect's defaults, 2 s, 1.5 s and 0.25 s.
	LeaderElectLeaseDuration, LeaderElectRenewDeadline, LeaderElectRetryPeriod time.Duration
	// UnsafeNoFsync is for tests: acknowledged writes may be lost on a crash.
	UnsafeNoFsync bool
	// RestoreFrom is an etcd snapshot restored on a first start (no etcd
	// data yet), checked against RestoreSHA256 when set (snapshot.go).
	RestoreFrom, RestoreSHA256 string
	// Authorization is "rbac" (the default when empty): RBAC and the Node
	// authorizer decide every request; or "none": every authenticated
	// user may do anything (benchmarks, single-user experiments).
	Authorization string

	// Service makes this server the cluster service (service.go): it also
	// serves wharf.dev/v1 (resources.Service()) and runs ServiceController
	// with the controllers.
	Service bool
	// ProviderNetwork is the local provider's host network (default
	// wire.DefaultProviderNetwork); its first address, the service address,
	// is added to TLSSANs. Service mode only.
	ProviderNetwork string
	// HostsDir is where providers keep hosts (default <data-dir>/hosts).
	HostsDir string
	// ServiceController runs the cluster controller; nil serves the API only.
	ServiceController wire.ServiceController
}

// Defaults for Options; the address ranges' are in package wire.
const (
	DefaultListen             = "0.0.0.0:6443"
	DefaultCompactionInterval = 5 * time.Minute
)

// Version is what /version reports. The minor picks the kubectl release
// that /usr/bin/kubectl runs; client-go here speaks the same API.
var Version = version.Info{
	Major: "1", Minor: "33", GitVersion: "v1.33.0-wharf", Platform: "linux/amd64", GoVersion: "go1.26",
}

// Server is a running control plane.
type Server struct {
	opts     Options
	log      *slog.Logger
	etcd     *storage.Embedded
	client   *clientv3.Client
	http     *http.Server
	listener net.Listener
	ca       *pki.CA
	api      *apiserver.Server
	store    *storage.Store
	// kube is the loopback client of the server's own handlers (join).
	kube        kubernetes.Interface
	metrics     *resourcemetrics.Scraper
	clusterCIDR netip.Prefix
	serviceCIDR netip.Prefix
	lbPool      []netip.Prefix
	// id names this server (leader.go); registry serves /metrics.
	id       string
	registry *prometheus.Registry
	// stopElection, once the server is a candidate, releases the
	// controllers' lease and stops them; stopEndpoint withdraws this
	// server from the kubernetes service (apiserverlease.go).
	stopElection, stopEndpoint func()
	leaveOnce                  sync.Once

	// URL is where clients reach the server; Loopback is the in-process
	// clients' configuration; AdminKubeconfig is the path kubectl uses.
	URL             string
	Loopback        *rest.Config
	AdminKubeconfig string
	JoinToken       string

	// memberMu serialises etcd membership changes (members.go).
	memberMu sync.Mutex
	// abrupt: stop without waiting for clients (a restart, members.go).
	abrupt atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// Start brings the server up and returns once it serves.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.CompactionInterval == 0 {
		opts.CompactionInterval = DefaultCompactionInterval
	}
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = wire.DefaultServiceCIDR
	}
	if opts.ClusterCIDR == "" {
		opts.ClusterCIDR = wire.DefaultClusterCIDR
	}
	if opts.NodeCIDRMaskSize == 0 {
		opts.NodeCIDRMaskSize = nodeipam.DefaultMaskSize
	}
	switch opts.Authorization {
	case "":
		opts.Authorization = "rbac"
	case "rbac", "none":
	default:
		return nil, fmt.Errorf("authorization %q: want rbac or none", opts.Authorization)
	}
	if opts.VIP != "" {
		if _, err := netip.ParseAddr(opts.VIP); err != nil {
			return nil, fmt.Errorf("virtual address %q: %w", opts.VIP, err)
		}
	}
	if opts.VIP != "" && opts.EtcdPeerAddress == "" {
		return nil, errors.New("a virtual address needs an etcd member of several (--etcd-peer-address): its holder is the member's leader")
	}
	if err := opts.serviceDefaults(); err != nil {
		return nil, err
	}
	if err := opts.restoreAtStart(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{opts: opts, log: opts.Logger, cancel: cancel, errs: make(chan error, 4)}
	if err := s.start(ctx); err != nil {
		cancel()
		s.shutdown()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	o := s.opts
	var err error
	certDir := filepath.Join(o.DataDir, "pki")
	if s.ca, err = pki.EnsureCA(certDir, "wharf-ca"); err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	if s.listener, err = net.Listen("tcp", o.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	port := s.listener.Addr().(*net.TCPAddr).Port
	host := clientHost(o)
	s.URL = fmt.Sprintf("https://%s", net.JoinHostPort(host, fmt.Sprint(port)))
	serving, err := s.ca.EnsureServing(certDir, "apiserver", servingHosts(o, host))
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	tokens, err := loadTokens(o.DataDir)
	if err != nil {
		return err
	}
	s.JoinToken = joinToken(s.ca, tokens.join)
	saKey, err := pki.EnsureKey(filepath.Join(certDir, "service-account.key"))
	if err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	issuer, err := satoken.New(satoken.DefaultIssuer, saKey)
	if err != nil {
		return err
	}
	if s.id, err = loadServerID(o.DataDir); err != nil {
		return err
	}
	s.registry = prometheus.NewRegistry()
	if err := s.openStorage(ctx, tokens.admin); err != nil {
		return err
	}
	if err := s.finishRestore(ctx); err != nil {
		return err
	}
	st, err := storage.New(ctx, s.log.With("component", "storage"), s.client, storage.NewCodec(resources.NewScheme()))
	if err != nil {
		return err
	}
	s.store = st
	reg, err := resources.NewRegistry(resources.NewScheme(), o.servedResources()...)
	if err != nil {
		return err
	}
	cidr, err := netip.ParsePrefix(o.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("service CIDR %q: %w", o.ServiceCIDR, err)
	}
	if s.clusterCIDR, err = netip.ParsePrefix(o.ClusterCIDR); err == nil {
		err = nodeipam.Check(s.clusterCIDR, o.NodeCIDRMaskSize)
	}
	if err != nil {
		return fmt.Errorf("cluster CIDR %q: %w", o.ClusterCIDR, err)
	}
	s.serviceCIDR = cidr
	if s.lbPool, err = servicelb.ParsePool(o.LoadBalancerPool); err != nil {
		return err // names the load balancer CIDR at fault
	}
	for _, p := range s.lbPool {
		// Such an address would be routed as a cluster IP or a pod's.
		for _, r := range []struct {
			name string
			cidr netip.Prefix
		}{{"service CIDR", cidr}, {"cluster CIDR", s.clusterCIDR}} {
			if p.Overlaps(r.cidr) {
				return fmt.Errorf("load balancer CIDR %s overlaps the %s %s", p, r.name, r.cidr)
			}
		}
	}
	nodeTransport, err := s.nodeTransport(certDir)
	if err != nil {
		return err
	}
	admission := apiserver.DefaultAdmission()
	admission.ServiceCIDR = cidr
	if o.EvictionTimeout > 0 {
		secs := int64((o.EvictionTimeout + time.Second - 1) / time.Second)
		admission.NotReadyTolerationSeconds, admission.UnreachableTolerationSeconds = secs, secs
	}
	loopbackToken := randomToken()
	var metricsOpts []resourcemetrics.Option
	if o.MetricsInterval > 0 {
		metricsOpts = append(metricsOpts, resourcemetrics.WithInterval(o.MetricsInterval))
	}
	s.metrics = resourcemetrics.New(s.log.With("component", "resource-metrics"), nodeTransport, metricsOpts...)
	s.api = apiserver.New(apiserver.Config{
		Logger:   s.log.With("component", "apiserver"),
		Store:    st,
		Etcd:     s.client,
		Registry: reg,
		Authenticate: apiserver.Authenticators(
			apiserver.TokenAuthenticator(map[string]apiserver.User{
				tokens.admin:  {Name: "admin", Groups: []string{"system:masters"}},
				loopbackToken: {Name: "system:apiserver", Groups: []string{"system:masters"}},
				tokens.join:   {Name: "system:bootstrap", Groups: []string{bootstrappers, "system:nodes"}},
			}),
			s.authenticateNodeToken,
			apiserver.CertificateAuthenticator,
		),
		ServiceAccountIssuer: issuer,
		Metrics:              s.registry,
		Authorize:            o.Authorization != "none",
		NodeAccess:           nodeAccess(),
		Admission:            admission,
		ExternalAddress:      net.JoinHostPort(host, fmt.Sprint(port)),
		Version:              Version,
		Routes:               s.routes(ctx),
		Connect:              apiserver.NewNodeProxy(s.log.With("component", "node-proxy"), st, reg, nodeTransport).Connect,
		ResourceMetrics:      s.metrics,
	})
	s.http = &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{serving},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
			// Users may present a client certificate of the cluster's CA
			// (CN the user, O its groups); tokens work as before.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  s.ca.Pool(),
		},
	}
	// Ready once bootstrap objects exist and the controllers run.
	var ready atomic.Bool
	s.api.SetReadiness(func() error {
		if !ready.Load() {
			return errors.New("starting")
		}
		return nil
	})
	s.goRun(func() error {
		if err := s.http.ServeTLS(s.listener, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	loopback := loopbackHost(o.Listen)
	s.Loopback = &rest.Config{
		Host:            fmt.Sprintf("https://%s", net.JoinHostPort(loopback, fmt.Sprint(port))),
		BearerToken:     loopbackToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.ca.CertPEM, ServerName: loopback},
		// In-process clients are trusted: no client-side throttling, and
		// protobuf, which costs a third of JSON to decode.
		QPS: -1, Burst: -1,
		ContentConfig: rest.ContentConfig{
			ContentType:        "application/vnd.kubernetes.protobuf",
			AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		},
		UserAgent: "wharf-controlplane",
	}
	if s.kube, err = kubernetes.NewForConfig(s.Loopback); err != nil {
		return err
	}
	s.goRun(func() error { s.api.Run(ctx); return nil })
	if err := s.bootstrap(ctx, port); err != nil {
		return err
	}
	if err := s.startEndpoint(ctx, s.kube, port); err != nil {
		return err
	}
	if err := s.writeClientFiles(tokens.admin); err != nil {
		return err
	}
	s.goRun(func() error { s.compact(ctx, st); return nil })
	s.goRun(func() error { s.api.RunAllocationRepair(ctx, apiserver.DefaultAllocationRepairInterval); return nil })
	if !o.DisableControllers {
		if err := s.startMetrics(ctx); err != nil {
			return err
		}
		if err := s.startElection(ctx); err != nil {
			return err
		}
	}
	ready.Store(true)
	if s.etcd != nil && o.VIP != "" {
		if addr, err := netip.ParseAddr(o.VIP); err == nil {
			s.goRun(func() error { s.holdVIP(ctx, addr); return nil })
		}
	}
	s.log.Info("server ready", "url", s.URL, "kubeconfig", s.AdminKubeconfig)
	return nil
}

func (s *Server) openStorage(ctx context.Context, adminToken string) error {
	o := s.opts
	if o.EtcdPeerAddress != "" {
		return s.openMember(ctx, adminToken)
	}
	if len(o.EtcdServers) > 0 {
		c, err := dialEtcd(ctx, o.EtcdServers, o.EtcdTLS)
		if err != nil {
			return err
		}
		s.client = c
		return nil
	}
	e, err := storage.StartEmbedded(ctx, s.log, storage.EmbeddedConfig{Dir: filepath.Join(o.DataDir, "etcd"), UnsafeNoFsync: o.UnsafeNoFsync})
	if err != nil {
		return err
	}
	s.etcd, s.client = e, e.Client
	return nil
}

// goRun runs f until the server stops; an error from it stops the server.
func (s *Server) goRun(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			select {
			case s.errs <- err:
			default:
			}
			s.cancel()
		}
	}()
}

// compact discards etcd history older than one interval, as Kubernetes'
// API server does: watches further behind get 410 Gone and relist.
func (s *Server) compact(ctx context.Context, st *storage.Store) {
	t := time.NewTicker(s.opts.CompactionInterval)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := st.Revision(ctx)
		if err != nil {
			continue
		}
		if prev > 0 {
			if err := st.Compact(ctx, prev); err != nil {
				s.log.Warn("compaction failed", "revision", prev, "err", err)
			}
		}
		prev = cur
	}
}

// Wait blocks until the server stops and returns why.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case err := <-s.errs:
		s.Stop()
		return err
	}
	s.Stop()
	return nil
}

// Stop shuts the server down.
func (s *Server) Stop() {
	s.leave()
	s.cancel()
	s.shutdown()
}

func (s *Server) shutdown() {
	if s.http != nil {
		if !s.abrupt.Load() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.http.Shutdown(sctx)
			cancel()
		}
		s.http.Close()
	} else if s.listener != nil {
		s.listener.Close()
	}
	s.wg.Wait()
	if s.etcd != nil {
		s.etcd.Close()
	} else if s.client != nil {
		s.client.Close()
	}
}

// loopbackHost is where in-process clients reach the server: 127.0.0.1
// when it listens on every address, else the one address it listens on.
func loopbackHost(listen string) string {
	h, _, err := net.SplitHostPort(listen)
	if err != nil || h == "" || h == "0.0.0.0" || h == "::" {
		return "127.0.0.1"
	}
	return h
}

// clientHost is the host clients on this machine use to reach the server.
func clientHost(o Options) string {
	if o.AdvertiseAddress != "" {
		return o.AdvertiseAddress
	}
	h, _, err := net.SplitHostPort(o.Listen)
	if err != nil || h == "" || h == "0.0.0.0" || h == "::" {
		return "127.0.0.1"
	}
	return h
}

func servingHosts(o Options, host string) []string {
	hosts := []string{"127.0.0.1", "localhost", host, "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	if ip, err := netip.ParsePrefix(o.ServiceCIDR); err == nil {
		hosts = append(hosts, ip.Masked().Addr().Next().String())
	}
	if o.VIP != "" {
		hosts = append(hosts, o.VIP)
	}
	return append(hosts, o.TLSSANs...)
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// joinToken is what an agent needs to join: the CA's hash and a secret.
func joinToken(ca *pki.CA, secret string) string {
	return wire.JoinToken{CAHash: wire.CertHash(ca.Cert.Raw), Secret: secret}.String()
}

// nodeTransport is how the API server reaches agents (logs, exec): it
// trusts serving certificates from the cluster CA and presents a client
// certificate of its own. HTTP/1.1 only: exec's upgrades need it.
func (s *Server) nodeTransport(certDir string) (*http.Transport, error) {
	certFile, keyFile, err := s.ca.IssueClient(certDir, "apiserver-node-client", "system:apiserver", []string{"system:masters"})
	if err != nil {
		return nil, fmt.Errorf("client certificate for agents: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate for agents: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.Cert)
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 16,
	}, nil
}

// CompactNow discards all etcd history before the current revision; tests
// use it to check what clients see once history is gone.
func (s *Server) CompactNow(ctx context.Context) error {
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return err
	}
	return s.store.Compact(ctx, rev)
}
