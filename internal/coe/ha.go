package coe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/wire"
)

// Clusters of several masters (docs/ha.md): each master runs a server
// with an etcd member; the first master of a new cluster starts the etcd
// cluster and every other master, and every master made later (recovery,
// replacement), joins it through the cluster's API address. That address
// is a virtual one, taken from the cluster's load balancer block and held
// by the server whose member leads etcd, so kubectl, agents and this
// service follow a failover without being told.

// isHA: the cluster has several masters.
func isHA(cl *wharfv1.Cluster) bool { return masterCount(cl) > 1 }

// apiVIP is a multi-master cluster's API address: the first usable
// address of its load balancer block (its servers keep it from services).
func apiVIP(cl *wharfv1.Cluster) (netip.Addr, error) {
	block, err := netip.ParsePrefix(cl.Status.LoadBalancerCIDR)
	if err != nil {
		return netip.Addr{}, errors.New("a cluster of several masters needs an API address from a load balancer pool, and its template's network has none (network.loadBalancerCIDR)")
	}
	return block.Masked().Addr().Next(), nil
}

// haArgs are a master's arguments in a multi-master cluster.
func (s *hostSpecs) haArgs(name string) []string {
	args := []string{
		"--etcd-peer-address", "$(HOST_IP):" + strconv.Itoa(wire.EtcdPeerPort),
		"--etcd-name", name,
		"--vip", s.vip,
	}
	if s.joinMasters || name != s.bootstrapMaster {
		args = append(args, "--join", "https://"+net.JoinHostPort(s.vip, strconv.Itoa(s.apiPort)))
	}
	return args
}

// masterEndpoint reaches one master's server directly, with the
// cluster's admin token: its etcd member's view, its readiness.
type masterEndpoint struct {
	client *http.Client
	token  string
}

func newMasterEndpoint(cr *credentials) (*masterEndpoint, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cr.caPEM) {
		return nil, errors.New("cluster CA certificate does not parse")
	}
	return &masterEndpoint{
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			// Each call is to one master once in a while: no pool.
			DisableKeepAlives: true,
		}},
		token: cr.adminToken,
	}, nil
}

func (m *masterEndpoint) do(ctx context.Context, method, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	res, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		var st struct{ Message string }
		if json.Unmarshal(data, &st) != nil || st.Message == "" {
			st.Message = strings.TrimSpace(string(data))
		}
		return &statusError{code: res.StatusCode, status: res.Status, msg: st.Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// statusError is a master's answer other than 2xx.
type statusError struct {
	code        int
	status, msg string
}

func (e *statusError) Error() string { return e.status + ": " + e.msg }

// memberView is what one master said of its member, or why it said nothing.
type memberView struct {
	host   provider.Host
	status wire.EtcdStatus
	err    error
}

// memberViews asks every master for its member's own view, at once.
func (c *Controller) memberViews(ctx context.Context, cr *credentials, masters []provider.Host) ([]memberView, error) {
	ep, err := newMasterEndpoint(cr)
	if err != nil {
		return nil, err
	}
	out := make([]memberView, len(masters))
	var wg sync.WaitGroup
	for i, h := range masters {
		out[i].host = h
		if !h.Running {
			out[i].err = errors.New("host is not running")
			continue
		}
		wg.Go(func() {
			url := apiAddressOf(h, c.cfg.APIPort) + wire.EtcdStatusPath
			out[i].err = ep.do(ctx, http.MethodGet, url, &out[i].status)
		})
	}
	wg.Wait()
	return out, nil
}

// etcdVerdict sums the members' views up: the quorum is there when a
// majority of the voting members answer and one of them knows a leader.
// reasons has a line per master and one for etcd.
func etcdVerdict(views []memberView) (quorum bool, reasons map[string]string) {
	reasons = map[string]string{}
	var voters []string
	var best wire.EtcdStatus
	for _, v := range views {
		if v.err == nil && v.status.AppliedIndex >= best.AppliedIndex {
			best = v.status
		}
	}
	for _, m := range best.Members {
		if !m.Learner {
			voters = append(voters, m.ID)
		}
	}
	up, leader := 0, ""
	for _, v := range views {
		switch {
		case v.err != nil:
			reasons[v.host.Name] = "etcd member unreachable: " + v.err.Error()
		case v.status.Learner:
			reasons[v.host.Name] = "etcd member joining (learner)"
		case v.status.Leader == "":
			reasons[v.host.Name] = "etcd member has no leader"
			if slices.Contains(voters, v.status.ID) {
				up++
			}
		default:
			r := "ok"
			if v.status.Leader == v.status.ID {
				r = "ok, etcd leader"
			}
			reasons[v.host.Name] = r
			leader = v.status.Leader
			if slices.Contains(voters, v.status.ID) {
				up++
			}
		}
	}
	n := len(voters)
	if n == 0 {
		n = len(views)
	}
	quorum = up >= n/2+1 && leader != ""
	if quorum {
		reasons["etcd"] = fmt.Sprintf("%d of %d members up", up, n)
	} else {
		reasons["etcd"] = fmt.Sprintf("%s: %d of %d members", resources.QuorumLostReason, up, n)
	}
	return quorum, reasons
}

// mastersOf lists a cluster's master hosts, by name.
func mastersOf(hosts []provider.Host) []provider.Host {
	var out []provider.Host
	for _, h := range hosts {
		if h.Role == provider.RoleMaster {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b provider.Host) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// waitMasters waits until every master's own API is ready and its member
// a voter, so that a cluster reported made survives the loss of any one.
func (c *Controller) waitMasters(ctx context.Context, cr *credentials, masters map[string]provider.Host) error {
	ep, err := newMasterEndpoint(cr)
	if err != nil {
		return err
	}
	for name, h := range masters {
		base := apiAddressOf(h, c.cfg.APIPort)
		delay := 10 * time.Millisecond
		for {
			var st wire.EtcdStatus
			err := ep.do(ctx, http.MethodGet, base+"/readyz", nil)
			if err == nil {
				err = ep.do(ctx, http.MethodGet, base+wire.EtcdStatusPath, &st)
			}
			if err == nil && !st.Learner && st.Leader != "" {
				break
			}
			if err == nil {
				err = errors.New("etcd member not a voter with a leader yet")
			}
			select {
			case <-ctx.Done():
				return &hostFault{faults: map[string]string{name: fmt.Sprintf("master not ready: %v", err)}}
			case <-c.clock.After(delay):
			}
			delay = min(delay*2, 100*time.Millisecond)
		}
	}
	return nil
}

// probeMasters asks each master of a multi-master cluster for its
// member's view: reasons per master and for etcd.
func (c *Controller) probeMasters(ctx context.Context, cl *wharfv1.Cluster, cr *credentials) (bool, map[string]string, error) {
	e, err := c.envFor(ctx, cl, cl.Annotations[templateAnnotation])
	if err != nil {
		return false, nil, err
	}
	hosts, err := e.prov.ListHosts(ctx, e.ref)
	if err != nil {
		return false, nil, fmt.Errorf("list hosts: %w", err)
	}
	views, err := c.memberViews(ctx, cr, mastersOf(hosts))
	if err != nil {
		return false, nil, err
	}
	quorum, reasons := etcdVerdict(views)
	return quorum, reasons, nil
}

// mastersHealthy: every master's member is up and follows a leader.
func mastersHealthy(reasons map[string]string) bool {
	for k, r := range reasons {
		if k != "etcd" && !strings.HasPrefix(r, "ok") {
			return false
		}
	}
	return true
}

// isNodeReason: a health reason's key names a node (a worker), not the
// API, etcd or a master.
func isNodeReason(cl *wharfv1.Cluster, key string) bool {
	return key != "api" && key != "etcd" && !strings.HasPrefix(key, cl.Name+"-master-")
}
