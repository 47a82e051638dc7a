// Package clusterdns is the node-local cluster DNS server a Wharf agent runs
// for its pods: what CoreDNS's kubernetes plugin and NodeLocal DNSCache are
// to a kubelet. It answers the records of the Kubernetes DNS specification
// (https://github.com/kubernetes/dns/blob/master/docs/specification.md) for
// services, their endpoints and pods from in-memory state the agent feeds
// from its informers, and forwards every other name to the node's upstream
// resolvers through an answer cache.
//
// Answers are precomputed when a Service or EndpointSlice changes, as
// packed wire messages a query only has to copy and patch with its ID,
// flags and question; an update is visible to the next query.
//
// The agent calls the Update and Delete methods from its informers' event
// handlers and runs Serve on a UDP socket and a TCP listener bound to the
// node's DNS address. Until the informers have synced, the names of
// services not yet seen are NXDOMAIN: start Serve after they have.
package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Defaults of Config.
const (
	DefaultDomain    = "cluster.local"
	DefaultTTL       = 5 // CoreDNS's kubernetes plugin default
	DefaultCacheSize = 10000

	maxPositiveTTL = 30 * time.Second
	maxNegativeTTL = 5 * time.Second
	forwardTimeout = 2 * time.Second
	// maxUDPSize is the EDNS payload size this server advertises and the
	// most it sends over UDP (the DNS flag day 2020 value: no fragments).
	maxUDPSize = 1232
	// udpReadBuffer is what Serve asks for its UDP socket.
	udpReadBuffer = 4 << 20
)

// Config says what a Server serves.
type Config struct {
	// Domain is the cluster domain; default "cluster.local".
	Domain string
	// Upstreams are the "ip:port" resolvers of names outside the cluster
	// domain, tried in turn. Empty: such names are REFUSED, as a server
	// without recursion answers them.
	Upstreams []string
	// TTL of cluster records and of the negative answers about them;
	// default 5 s.
	TTL uint32
	// CacheSize is the number of upstream answers kept; default 10000.
	// Answers live for their TTL (at most 30 s), negative answers for
	// their SOA minimum (at most 5 s).
	CacheSize int
	Logger    *slog.Logger
}

// Server answers DNS queries of a cluster's pods. It is a dns.Handler; its
// update methods are safe to call concurrently with queries.
type Server struct {
	domain    string // lowercase FQDN, "cluster.local."
	svcZone   string // "svc.cluster.local."
	podZone   string // "pod.cluster.local."
	ttl       uint32
	upstreams []string
	log       *slog.Logger

	// negative answers of the zones: any question, SOA in authority
	nxdomain, nodata, nodataV4, nodataV6 *template
	soa                                  *dns.SOA

	mu        sync.Mutex // serialises updates and guards the maps below
	services  map[objKey]*service
	slices    map[objKey]*endpointSlice
	svcSlices map[objKey]map[objKey]struct{}
	published map[objKey]map[string]*rrset // the names each service owns
	owners    map[string][]objKey
	below     map[string]int // names owned under a name: an empty non-terminal

	rw    sync.RWMutex
	names map[string]*entry // what queries read; entries are immutable

	cache     *cache
	flight    singleflight.Group
	preferred atomic.Int32 // upstream that answered last
	waiting   atomic.Int32 // UDP queries waiting for an upstream

	// Tuning off, to measure what it brings: answers packed from a
	// dns.Msg, and UDP served by the dns package's server.
	slowOnly, noBatches bool
}

// New returns a Server for cfg with no services yet.
func New(cfg Config) (*Server, error) {
	domain := cfg.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	domain = lowerASCII(dns.Fqdn(domain))
	if _, ok := dns.IsDomainName(domain); !ok || domain == "." {
		return nil, fmt.Errorf("cluster DNS: domain %q is not a domain name", cfg.Domain)
	}
	for _, u := range cfg.Upstreams {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return nil, fmt.Errorf("cluster DNS: upstream %q is not ip:port: %w", u, err)
		}
	}
	s := &Server{
		domain:    domain,
		svcZone:   "svc." + domain,
		podZone:   "pod." + domain,
		ttl:       cfg.TTL,
		upstreams: append([]string(nil), cfg.Upstreams...),
		log:       cfg.Logger,
		services:  map[objKey]*service{},
		slices:    map[objKey]*endpointSlice{},
		svcSlices: map[objKey]map[objKey]struct{}{},
		published: map[objKey]map[string]*rrset{},
		owners:    map[string][]objKey{},
		below:     map[string]int{},
		names:     map[string]*entry{},
	}
	if s.ttl == 0 {
		s.ttl = DefaultTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	s.cache = newCache(size)
	if err := s.initZones(); err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	return s, nil
}

// Serve answers queries on pc (UDP) and ln (TCP), either of which may be
// nil, until ctx is done; it closes both when it returns. A UDP socket
// bound to one address is served in batches (see serveBatches).
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	var runs []*runner
	if pc != nil {
		if u, ok := pc.(*net.UDPConn); ok {
			// Pods send bursts (every lookup is an A and an AAAA query
			// times the search path): the default buffer of ~200 KiB holds
			// about 100 queries, and the kernel drops the rest.
			if err := setReadBuffer(u, udpReadBuffer); err != nil {
				s.log.Warn("cluster DNS: UDP receive buffer left as is", "err", err)
			}
		}
		if u, ok := batchable(pc); ok && !s.noBatches {
			runs = append(runs, s.startBatches(u))
		} else {
			runs = append(runs, startDNS(&dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.DefaultMsgSize}, "udp "+pc.LocalAddr().String()))
		}
	}
	if ln != nil {
		runs = append(runs, startDNS(&dns.Server{Listener: ln, Handler: s, MaxTCPQueries: -1}, "tcp "+ln.Addr().String()))
	}
	if len(runs) == 0 {
		return errors.New("cluster DNS: nothing to serve on")
	}
	// Every server starts or fails at once; only a started one is stopped.
	var errs []error
	var up []*runner
	for _, r := range runs {
		select {
		case <-r.started:
			up = append(up, r)
		case err := <-r.done:
			errs = append(errs, fmt.Errorf("cluster DNS on %s: %w", r.name, err))
		}
	}
	if len(errs) == 0 {
		s.log.Info("cluster DNS serving", "domain", s.domain, "upstreams", s.upstreams)
		stopped := make(chan error, len(up))
		for _, r := range up {
			go func() {
				err := <-r.done
				if err == nil {
					err = errors.New("stopped")
				}
				stopped <- fmt.Errorf("cluster DNS on %s: %w", r.name, err)
			}()
		}
		select {
		case <-ctx.Done():
		case err := <-stopped:
			errs = append(errs, err)
		}
	}
	// Queries waiting for an upstream finish within forwardTimeout.
	sctx, cancel := context.WithTimeout(context.Background(), forwardTimeout+time.Second)
	defer cancel()
	for _, r := range up {
		if err := r.stop(sctx); err != nil {
			errs = append(errs, fmt.Errorf("cluster DNS: stopping %s: %w", r.name, err))
		}
	}
	if pc != nil {
		pc.Close()
	}
	if ln != nil {
		ln.Close()
	}
	return errors.Join(errs...)
}

// runner is one server Serve runs.
type runner struct {
	name    string
	started chan struct{} // closed once it serves
	done    chan error    // what its serving loop returned
	stop    func(context.Context) error
}

func startDNS(srv *dns.Server, name string) *runner {
	r := &runner{name: name, started: make(chan struct{}), done: make(chan error, 1), stop: srv.ShutdownContext}
	srv.NotifyStartedFunc = func() { close(r.started) }
	go func() { r.done <- srv.ActivateAndServe() }()
	return r
}

func (s *Server) startBatches(u *net.UDPConn) *runner {
	r := &runner{name: "udp " + u.LocalAddr().String(), started: make(chan struct{}), done: make(chan error, 1)}
	close(r.started)
	finished := make(chan struct{})
	r.stop = func(ctx context.Context) error {
		u.Close()
		select {
		case <-finished:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() {
		err := s.serveBatches(u)
		close(finished)
		r.done <- err
	}()
	return r
}

// lowerASCII folds a name as DNS compares names (RFC 4343: ASCII only),
// without allocating when it is already lowercase.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
