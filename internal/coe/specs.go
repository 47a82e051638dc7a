package coe

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

// What runs on hosts, as docs/service.md fixes it.

// Files and paths on a host, below its state dir.
const (
	fileRegistryCA    = "registry/ca.crt"
	fileRegistryToken = "registry/token"
	fileResolvConf    = "resolv.conf"
)

// hostSpecs holds what a cluster's host specs are made from.
type hostSpecs struct {
	e          *env
	cr         *credentials
	apiPort    int
	apiAddress string // the cluster's API, for workers
	pullToken  string // "" without a registry
	registry   string // the service's registry URL ("" none)
	registryCA []byte
	lbBlock    string // the cluster's load balancer addresses ("" none)
	// Several masters (ha.go): vip is the API address; bootstrapMaster
	// starts the etcd cluster unless joinMasters (it exists already).
	vip             string
	bootstrapMaster string
	joinMasters     bool
	restore         *restoreSource
}

func (c *Controller) specsFor(cl *wharfv1.Cluster, e *env, cr *credentials, apiAddress, pullToken string) *hostSpecs {
	s := &hostSpecs{e: e, cr: cr, apiPort: c.cfg.APIPort, apiAddress: apiAddress, pullToken: pullToken, lbBlock: cl.Status.LoadBalancerCIDR}
	if pullToken != "" {
		s.registry, s.registryCA = c.cfg.RegistryURL, c.cfg.RegistryCA
	}
	return s
}

func (s *hostSpecs) cidrs() (pods, services string) {
	pods, services = s.e.tmpl.Network.PodCIDR, s.e.tmpl.Network.ServiceCIDR
	if pods == "" {
		pods = wire.DefaultClusterCIDR
	}
	if services == "" {
		services = wire.DefaultServiceCIDR
	}
	return pods, services
}

func (s *hostSpecs) base(name, role string) provider.HostSpec {
	return provider.HostSpec{
		Cluster: s.e.ref, Name: name, Role: role,
		CPU: s.e.tmpl.Flavor.CPU, Memory: s.e.tmpl.Flavor.Memory,
		HostCIDR: s.e.tmpl.Network.HostCIDR,
	}
}

// master is a control plane host: a wharf server with the cluster's CA
// and tokens.
func (s *hostSpecs) master(name string) provider.HostSpec {
	tokens, _ := json.Marshal(map[string]string{"admin": s.cr.adminToken, "join": s.cr.joinSecret})
	pods, services := s.cidrs()
	spec := s.base(name, provider.RoleMaster)
	spec.Files = map[string][]byte{
		"server/pki/ca.crt":  s.cr.caPEM,
		"server/pki/ca.key":  s.cr.caKeyPEM,
		"server/tokens.json": tokens,
	}
	if len(s.cr.saKeyPEM) > 0 {
		// Masters share it: a token one signs, every one accepts.
		spec.Files["server/pki/service-account.key"] = s.cr.saKeyPEM
	}
	spec.Args = []string{"server",
		"--data-dir", "$(STATE_DIR)/server",
		"--listen", "$(HOST_IP):" + strconv.Itoa(s.apiPort),
		"--advertise-address", "$(HOST_IP)",
		"--cluster-cidr", pods,
		"--service-cidr", services,
	}
	if s.lbBlock != "" {
		spec.Args = append(spec.Args, "--lb-cidr", s.lbBlock)
	}
	if s.vip != "" {
		// The cluster's address comes and goes on the interface: listen
		// on every address, not the host's only.
		spec.Args[slices.Index(spec.Args, "--listen")+1] = ":" + strconv.Itoa(s.apiPort)
		spec.Args = append(spec.Args, s.haArgs(name)...)
	}
	s.restore.addTo(&spec)
	return spec
}

// worker is a node: a wharf agent that joins the cluster and pulls from
// the service's registry.
func (s *hostSpecs) worker(name string) provider.HostSpec {
	pods, services := s.cidrs()
	spec := s.base(name, provider.RoleWorker)
	spec.Args = []string{"agent",
		"--server", s.apiAddress,
		"--token", s.cr.joinToken,
		"--state-dir", "$(STATE_DIR)/agent",
		"--node-name", name,
		"--node-ip", "$(HOST_IP)",
		"--cgroup-root", "/wharf/" + s.e.ref.Key() + "/" + name,
		"--cluster-cidr", pods,
		"--service-cidr", services,
	}
	spec.Files = map[string][]byte{}
	// The template's resolver (Magnum's dns_nameserver); none given: the
	// host's own resolv.conf, the agent's default.
	switch ns := s.e.tmpl.Network.DNSNameserver; ns {
	case "":
	case wharfv1.DNSNameserverNone:
		spec.Args = append(spec.Args, "--resolv-conf=")
	default:
		spec.Files[fileResolvConf] = []byte("nameserver " + ns + "\n")
		spec.Args = append(spec.Args, "--resolv-conf", "$(STATE_DIR)/"+fileResolvConf)
	}
	if s.registry != "" {
		spec.Files[fileRegistryCA], spec.Files[fileRegistryToken] = s.registryCA, []byte(s.pullToken)
		spec.Args = append(spec.Args,
			"--registry-url", s.registry,
			"--registry-ca-file", "$(STATE_DIR)/"+fileRegistryCA,
			"--registry-token-file", "$(STATE_DIR)/"+fileRegistryToken)
	}
	return spec
}

func (s *hostSpecs) forRole(role, name string) provider.HostSpec {
	if role == provider.RoleMaster {
		return s.master(name)
	}
	return s.worker(name)
}

// apiAddressOf is the cluster API's URL on a master.
func apiAddressOf(master provider.Host, port int) string {
	return "https://" + net.JoinHostPort(master.Address, strconv.Itoa(port))
}

// createHosts makes hosts in parallel. A host that fails is in errs; the
// others are made regardless, so a retry or a delete finds them all.
func createHosts(ctx context.Context, p provider.Provider, specs []provider.HostSpec) (map[string]provider.Host, map[string]error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	hosts, errs := map[string]provider.Host{}, map[string]error{}
	for _, spec := range specs {
		wg.Go(func() {
			h, err := p.CreateHost(ctx, spec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[spec.Name] = err
				return
			}
			if !h.Running {
				errs[spec.Name] = fmt.Errorf("host %q made but not running", spec.Name)
				return
			}
			hosts[spec.Name] = h
		})
	}
	wg.Wait()
	return hosts, errs
}
