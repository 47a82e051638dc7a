// Package ssh is the provider of hosts on machines that already exist (the
// Kolla-Ansible way): a template names the machines, a user and a key; the
// provider takes a free machine for each host, installs the Debian packages
// a host needs when they are missing, copies the wharf binary, writes the
// host's files and starts its wharf process (a systemd unit when systemd
// runs the machine, else a supervised process that outlives the ssh
// session), and removes all of it again. The machine-side half is `wharf
// hostctl` (package hostctl). Which machine serves which host is kept in
// records on the service's side, so a new Provider finds every host.
package ssh

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"wharf.dev/wharf/internal/network/podnet"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/ssh/hostctl"
)

// DefaultBaseDir is where hosts live on the machines.
const DefaultBaseDir = "/var/lib/wharf-host"

// Config says which machines to use and how to reach them.
type Config struct {
	// Hosts are the machines ("host" or "host:port", port 22 by default),
	// taken in order; a machine serves one cluster host at a time.
	Hosts []string
	// User logs in (default root); any other user needs password-less sudo.
	User string
	// Key is the private key (PEM or OpenSSH format, no passphrase).
	Key []byte
	// KnownHosts (known_hosts format) pins the machines' host keys. When
	// empty, a machine's key is trusted on first use and pinned in
	// <StateDir>/known_hosts.
	KnownHosts []byte
	// Binary is the local wharf executable copied to the machines.
	Binary string
	// StateDir is the service-side directory of the provider's records
	// (which machine serves which host, pinned host keys). Providers that
	// may be given the same machines (one per template) must share it:
	// a machine is free when no record there names it.
	StateDir string
	// BaseDir is where hosts live on the machines (default DefaultBaseDir).
	BaseDir string
	// ServiceAddress is the service's address as the machines see it
	// (default: this machine's source address towards the first machine).
	ServiceAddress string
	Logger         *slog.Logger
}

// Provider makes hosts on existing machines over ssh.
type Provider struct {
	cfg     Config
	log     *slog.Logger
	signer  ssh.Signer
	hostKey ssh.HostKeyCallback
	store   *store
	bin     *binary // wharf
	plugin  *binary // wharf-cni, next to it

	mu    sync.Mutex
	conns map[string]*ssh.Client   // by machine
	locks map[string]*sync.Mutex   // by host, so one host's calls do not race
	dials map[string]chan struct{} // by machine, one dial at a time
	down  map[string]time.Time     // by machine: when it was last unreachable
}

// downFor is how long a machine that could not be reached is skipped
// when choosing machines for new hosts.
const downFor = time.Minute

var _ provider.Provider = (*Provider)(nil)

// New checks cfg and returns a provider; it connects to no machine yet.
// Close it to drop its connections.
func New(cfg Config) (*Provider, error) {
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("ssh provider: no hosts")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("ssh provider: no state dir")
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	if cfg.BaseDir == "" {
		cfg.BaseDir = DefaultBaseDir
	}
	// The base dir goes into shell commands and systemd units unquoted.
	if !path.IsAbs(cfg.BaseDir) || strings.ContainsAny(cfg.BaseDir, " \t\n'\"\\$%`;&|<>*?") {
		return nil, fmt.Errorf("ssh provider: base dir %q: must be an absolute path without spaces or shell characters", cfg.BaseDir)
	}
	cfg.BaseDir = path.Clean(cfg.BaseDir)
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("ssh provider: wharf binary: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("ssh provider: private key: %w", err)
	}
	if cfg.ServiceAddress == "" {
		cfg.ServiceAddress = sourceAddress(cfg.Hosts[0])
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := newStore(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("ssh provider: %w", err)
	}
	p := &Provider{
		cfg: cfg, log: log.With("provider", "ssh"), signer: signer, store: st,
		bin:    &binary{path: cfg.Binary},
		plugin: &binary{path: filepath.Join(filepath.Dir(cfg.Binary), podnet.PluginFile)},
		conns:  map[string]*ssh.Client{}, locks: map[string]*sync.Mutex{}, dials: map[string]chan struct{}{},
		down: map[string]time.Time{},
	}
	if p.hostKey, err = hostKeyCallback(cfg.KnownHosts, st.knownHostsFile()); err != nil {
		return nil, fmt.Errorf("ssh provider: %w", err)
	}
	return p, nil
}

// Name is "ssh".
func (p *Provider) Name() string { return "ssh" }

// ServiceAddress is the service's address as the machines see it.
func (p *Provider) ServiceAddress() string { return p.cfg.ServiceAddress }

// Close drops the provider's ssh connections; hosts keep running.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for m, c := range p.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close %s: %w", m, err))
		}
		delete(p.conns, m)
	}
	return errors.Join(errs...)
}

// hostLock serialises the calls on one host.
func (p *Provider) hostLock(c provider.ClusterRef, name string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := c.Key() + "/" + name
	if p.locks[k] == nil {
		p.locks[k] = &sync.Mutex{}
	}
	return p.locks[k]
}

// layout is where one host lives on its machine.
type layout struct {
	hostctl.Paths
	CgroupRoot string // the agent's --cgroup-root
	Unit       string // systemd unit name
}

func (p *Provider) layoutOf(c provider.ClusterRef, name string) layout {
	key := c.Key()
	return layout{
		Paths:      hostctl.Paths{Dir: path.Join(p.cfg.BaseDir, key, name)},
		CgroupRoot: "/wharf/" + key + "/" + name,
		Unit:       "wharf-" + key + "-" + name + ".service",
	}
}

// machineAddr returns a machine's dial address (host:port) and its
// address as given, which the host's processes use ($(HOST_IP)).
func machineAddr(m string) (dial, host string) {
	if h, port, err := net.SplitHostPort(m); err == nil {
		return net.JoinHostPort(h, port), h
	}
	h := strings.Trim(m, "[]")
	return net.JoinHostPort(h, "22"), h
}

// sourceAddress is the address this machine sends from to reach machine,
// which is how the machine sees the service unless a NAT is in between.
// Connecting a UDP socket only picks the route: nothing is sent.
func sourceAddress(machine string) string {
	dial, _ := machineAddr(machine)
	c, err := net.Dial("udp", dial)
	if err != nil {
		return ""
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// validName: names go into paths, unit names and shell commands.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return s[0] != '.' && s[0] != '-'
}
