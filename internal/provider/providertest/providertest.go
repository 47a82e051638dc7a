// Package providertest is the conformance suite of provider.Provider:
// every implementation (local, ssh, fake) runs Run against itself. The
// hosts it makes run the suite's helper process (HelperCommand), a small
// HTTP server that reports its arguments, its files and how often it was
// started on its state dir, and fetches URLs from the host; so the suite
// checks processes, files and networking through the hosts' addresses
// alone, wherever the hosts are. A provider without real processes (a
// fake) sets NoProcesses and gets the bookkeeping cases only.
package providertest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"wharf.dev/wharf/internal/provider"
)

// Options adapt the suite to a provider.
type Options struct {
	// NoProcesses: the provider runs no processes (a fake); the suite
	// checks what CreateHost, ListHosts, PowerOff and DeleteHost say only.
	NoProcesses bool
	// HelperArgs turns the helper's arguments into a spec's Args. The
	// default puts HelperCommand first: for a provider whose binary is the
	// test binary, with RunHelperIfAsked first in TestMain.
	HelperArgs func(args []string) []string
	// Spec, if set, adjusts every spec the suite makes (limits, HostCIDR).
	Spec func(*provider.HostSpec)
	// Port is the helper's port on $(HOST_IP) (default 7777).
	Port int
	// MaxHosts is how many hosts the provider can hold at once (0: no
	// limit); cases that need more are skipped.
	MaxHosts int
	// Timeout bounds each case, so a hung provider fails instead of
	// blocking (default 2 minutes). Nothing is asserted about durations.
	Timeout time.Duration
	// HostOff, if set, checks provider-specific state after PowerOff
	// (local: no process left in the host's cgroups).
	HostOff func(t *testing.T, h provider.Host)
	// HostGone, if set, checks that nothing of a deleted host is left
	// (local: namespace, veth, cgroups, processes, state dir).
	HostGone func(t *testing.T, h provider.Host)
	// ServicePort is the one port hosts may reach on the service address
	// (the service's API and registry): the suite serves there, and
	// checks that another port of that address is out of the hosts'
	// reach. 0: any port, none checked.
	ServicePort int
	// Isolated: hosts of different clusters must not reach each other
	// (the local provider cuts each cluster off, as a private network).
	Isolated bool
	// Dial, if set, opens the suite's connections to the hosts.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Run runs the conformance cases against providers newProvider makes. All
// providers one call of Run makes must share their state (a provider
// made later finds the hosts of one made earlier, like a restarted
// service); each case deletes its hosts when it ends, failed or not.
func Run(t *testing.T, newProvider func(t *testing.T) provider.Provider, opts Options) {
	if opts.HelperArgs == nil {
		opts.HelperArgs = func(args []string) []string { return append([]string{HelperCommand}, args...) }
	}
	if opts.Port == 0 {
		opts.Port = 7777
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	dial := opts.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	s := &suite{opts: opts, newProvider: newProvider, http: &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
		Timeout:   30 * time.Second,
	}}
	cases := []struct {
		name  string
		hosts int
		fn    func(t *testing.T, ctx context.Context)
	}{
		{"Lifecycle", 1, s.lifecycle},
		{"Missing", 0, s.missing},
		{"Reach", 2, s.reach},
		{"Restart", 2, s.restart},
		{"Clusters", 2, s.clusters},
		{"Concurrent", 4, s.concurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if opts.MaxHosts > 0 && c.hosts > opts.MaxHosts {
				t.Skipf("needs %d hosts, the provider has %d", c.hosts, opts.MaxHosts)
			}
			ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
			defer cancel()
			c.fn(t, ctx)
		})
	}
}

type suite struct {
	opts        Options
	newProvider func(t *testing.T) provider.Provider
	http        *http.Client
}

// testFiles are the files every host gets; their content is derived from
// the host so the suite can check it.
var testFiles = []string{"providertest/secret", "providertest/a/b/token"}

func newCluster(t *testing.T) provider.ClusterRef {
	b := make([]byte, 10)
	rand.Read(b)
	id := hex.EncodeToString(b)
	return provider.ClusterRef{Namespace: "providertest", Name: "pt" + id[:4], UID: id[4:]}
}

func fileContent(c provider.ClusterRef, host, file string) []byte {
	sum := sha256.Sum256([]byte(c.UID + "/" + host + "/" + file))
	return []byte(hex.EncodeToString(sum[:]) + "\n")
}

func (s *suite) spec(c provider.ClusterRef, name string) provider.HostSpec {
	spec := provider.HostSpec{
		Cluster: c, Name: name, Role: provider.RoleWorker, Files: map[string][]byte{},
		Args: s.opts.HelperArgs(helperArgs(name, s.opts.Port, testFiles)),
	}
	for _, f := range testFiles {
		spec.Files[f] = fileContent(c, name, f)
	}
	if s.opts.Spec != nil {
		s.opts.Spec(&spec)
	}
	return spec
}

// create makes a host and deletes it when the test ends.
func (s *suite) create(t *testing.T, ctx context.Context, p provider.Provider, spec provider.HostSpec) provider.Host {
	t.Helper()
	t.Cleanup(func() {
		if err := p.DeleteHost(context.Background(), spec.Cluster, spec.Name); err != nil {
			t.Errorf("cleanup: DeleteHost %s: %v", spec.Name, err)
		}
	})
	h, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatalf("CreateHost %s: %v", spec.Name, err)
	}
	if !h.Running || net.ParseIP(h.Address) == nil || h.Name != spec.Name || h.Role != spec.Role || h.Cluster != spec.Cluster {
		t.Fatalf("CreateHost %s = %+v: want it running with an IP address, name, role and cluster of the spec", spec.Name, h)
	}
	return h
}

func (s *suite) url(h provider.Host, path string) string {
	return "http://" + net.JoinHostPort(h.Address, strconv.Itoa(s.opts.Port)) + path
}

// get fetches a helper's URL once.
func (s *suite) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

// report waits until the host's helper answers and returns its report.
func (s *suite) report(t *testing.T, ctx context.Context, h provider.Host) Report {
	t.Helper()
	for {
		body, err := s.get(ctx, s.url(h, "/report"))
		if err == nil {
			var rep Report
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatalf("host %s: report %q: %v", h.Name, body, err)
			}
			return rep
		}
		select {
		case <-ctx.Done():
			t.Fatalf("host %s: its process never answered at %s: %v", h.Name, s.url(h, "/report"), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// unreachable checks that no helper answers at the host's address.
func (s *suite) unreachable(t *testing.T, ctx context.Context, h provider.Host) {
	t.Helper()
	if body, err := s.get(ctx, s.url(h, "/report")); err == nil {
		t.Errorf("host %s: a process still answers: %s", h.Name, body)
	}
}
