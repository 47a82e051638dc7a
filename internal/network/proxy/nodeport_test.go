package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/nsrun"
)

// TestNodePortTraffic sends connections from a host outside a test node
// to the node's address at node ports (root only). Pod a is on this node,
// pod b stands for one on another node.
func TestNodePortTraffic(t *testing.T) {
	n := newTestNode(t)
	n.addPod("a", "10.98.0.2")
	n.addPod("b", "10.98.0.3")
	const nodeIP, clientIP = "10.97.0.1", "10.97.0.2"
	outside := n.addOutside(nodeIP, clientIP)
	p := n.proxy(Config{Table: "wharf-svc-test", NodeName: "node-a", ClusterCIDR: netip.MustParsePrefix(podCIDR),
		NodeIPs: []netip.Addr{netip.MustParseAddr(nodeIP)}, Logger: testLogger(t)})
	nodePort := func(name, ip string, port int32, policy corev1.ServiceExternalTrafficPolicy, ports ...corev1.ServicePort) *corev1.Service {
		s := svc("ns", name, ip, ports...)
		s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeNodePort, policy
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = port
		}
		return s
	}
	a, b := onNode(ep("10.98.0.2"), "node-a"), onNode(ep("10.98.0.3"), "node-b")
	dnsPorts := []discoveryv1.EndpointPort{eport("dns", udp, 5353)}
	in := newInformer()
	in.service(p, nodePort("web", "10.96.0.10", 30080, corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "web-1", "web", httpPort, a, b))
	in.service(p, nodePort("dns", "10.96.0.11", 30053, corev1.ServiceExternalTrafficPolicyCluster, sport("dns", udp, 53)))
	in.slice(p, eslice("ns", "dns-1", "dns", dnsPorts, a, b))
	in.service(p, nodePort("local", "10.96.0.12", 30081, corev1.ServiceExternalTrafficPolicyLocal, sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "local-1", "local", httpPort, a, b))
	in.service(p, nodePort("elsewhere", "10.96.0.13", 30082, corev1.ServiceExternalTrafficPolicyLocal, sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "elsewhere-1", "elsewhere", httpPort, b))
	in.service(p, nodePort("empty", "10.96.0.14", 30083, corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80)))
	n.sync(p)

	// answers dials count times from ns and returns the answers by pod
	// and client address seen.
	answers := func(t *testing.T, ns, network, addr string, count int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range count {
			answer, err := dial(ns, network, addr)
			if err != nil {
				t.Fatalf("%s %s: %v", network, addr, err)
			}
			got[answer]++
		}
		return got
	}
	t.Run("cluster policy: both endpoints, masqueraded", func(t *testing.T) {
		got := answers(t, outside, "tcp", nodeIP+":30080", 40)
		if got["a "+gateway] == 0 || got["b "+gateway] == 0 || len(got) != 2 {
			t.Errorf("answers (pod, client seen): %v; want a and b, each seeing the node %s", got, gateway)
		}
	})
	t.Run("UDP", func(t *testing.T) {
		got := answers(t, outside, "udp", nodeIP+":30053", 30)
		if got["a "+gateway] == 0 || got["b "+gateway] == 0 || len(got) != 2 {
			t.Errorf("answers: %v", got)
		}
	})
	t.Run("local policy: this node's endpoint, client address kept", func(t *testing.T) {
		if got := answers(t, outside, "tcp", nodeIP+":30081", 20); got["a "+clientIP] != 20 {
			t.Errorf("answers: %v; want a seeing %s every time", got, clientIP)
		}
	})
	t.Run("from the node itself", func(t *testing.T) {
		if got := answers(t, n.ns, "tcp", nodeIP+":30080", 20); got["a "+nodeIP] == 0 && got["a "+gateway] == 0 {
			t.Errorf("answers: %v", got)
		}
	})
	t.Run("local policy, endpoints elsewhere only: dropped", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		var timeout net.Error
		if answer, err := dialCtx(ctx, outside, "tcp", nodeIP+":30082"); !errors.As(err, &timeout) || !timeout.Timeout() {
			t.Errorf("dial: %q, %v; want a timeout", answer, err)
		}
	})
	t.Run("no endpoint: refused at once", func(t *testing.T) {
		if answer, err := dial(outside, "tcp", nodeIP+":30083"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial: %q, %v; want connection refused", answer, err)
		}
	})
	t.Run("policy switched to Local", func(t *testing.T) {
		in.service(p, nodePort("web", "10.96.0.10", 30080, corev1.ServiceExternalTrafficPolicyLocal, sport("http", tcp, 80)))
		n.sync(p)
		if got := answers(t, outside, "tcp", nodeIP+":30080", 10); got["a "+clientIP] != 10 {
			t.Errorf("answers: %v", got)
		}
		in.service(p, nodePort("web", "10.96.0.10", 30080, corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80)))
		n.sync(p)
	})
	t.Run("scaled to one endpoint", func(t *testing.T) {
		in.slice(p, eslice("ns", "web-1", "web", httpPort, b))
		n.sync(p)
		if got := answers(t, outside, "tcp", nodeIP+":30080", 10); got["b "+gateway] != 10 {
			t.Errorf("answers: %v", got)
		}
	})
}

// TestHealthCheckNodePort: the health check node port of a LoadBalancer
// service with externalTrafficPolicy Local answers, from outside the
// node, 200 while the node has a ready endpoint of it, 503 when not, and
// nothing once the service is gone (root only).
func TestHealthCheckNodePort(t *testing.T) {
	n := newTestNode(t)
	const nodeIP, clientIP = "10.97.0.1", "10.97.0.2"
	outside := n.addOutside(nodeIP, clientIP)
	p := n.proxy(Config{Table: "wharf-svc-test", NodeName: "node-a", ClusterCIDR: netip.MustParsePrefix(podCIDR),
		NodeIPs: []netip.Addr{netip.MustParseAddr(nodeIP)}, ServeHealthChecks: true, Logger: testLogger(t)})
	t.Cleanup(func() { p.Close(context.Background()) })
	lb := svc("ns", "lb", "10.96.0.20", sport("http", tcp, 80))
	lb.Spec.Type, lb.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal
	lb.Spec.Ports[0].NodePort, lb.Spec.HealthCheckNodePort = 30080, 30500
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return critest.DialIn(ctx, outside, network, addr)
		},
	}}
	check := func(t *testing.T, wantCode, wantLocal int) {
		t.Helper()
		resp, err := client.Get("http://" + nodeIP + ":30500/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Service        map[string]string `json:"service"`
			LocalEndpoints int               `json:"localEndpoints"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantCode || body.LocalEndpoints != wantLocal || body.Service["name"] != "lb" || body.Service["namespace"] != "ns" {
			t.Errorf("%s, %+v; want %d with %d local endpoints of ns/lb", resp.Status, body, wantCode, wantLocal)
		}
	}
	p.UpdateService(lb)
	p.UpdateEndpointSlice(eslice("ns", "lb-1", "lb", httpPort, onNode(ep("10.98.0.2"), "node-a"), onNode(ep("10.98.0.3"), "node-b")))
	n.sync(p)
	check(t, http.StatusOK, 1)

	p.UpdateEndpointSlice(eslice("ns", "lb-1", "lb", httpPort, onNode(ep("10.98.0.3"), "node-b")))
	n.sync(p)
	check(t, http.StatusServiceUnavailable, 0)

	p.DeleteService("ns", "lb")
	n.sync(p)
	if _, err := client.Get("http://" + nodeIP + ":30500/healthz"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after the service's deletion: %v, want connection refused", err)
	}
}

// TestLoadBalancerTraffic sends connections from a host outside a test
// node to load balancer addresses the node holds, as the agent's
// announcer holds them: a /32 on the node's link (root only).
func TestLoadBalancerTraffic(t *testing.T) {
	n := newTestNode(t)
	podA := n.addPod("a", "10.98.0.2")
	n.addPod("b", "10.98.0.3")
	const nodeIP, clientIP = "10.97.0.1", "10.97.0.2"
	outside := n.addOutside(nodeIP, clientIP)
	p := n.proxy(Config{Table: "wharf-svc-test", NodeName: "node-a", ClusterCIDR: netip.MustParsePrefix(podCIDR),
		NodeIPs: []netip.Addr{netip.MustParseAddr(nodeIP)}, Logger: testLogger(t)})
	lb := func(name, ip, lbIP string, policy corev1.ServiceExternalTrafficPolicy, ports ...corev1.ServicePort) *corev1.Service {
		s := svc("ns", name, ip, ports...)
		s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, policy
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = int32(30100 + i)
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
		n.ip("addr", "replace", lbIP+"/32", "dev", "wsp-out")
		return s
	}
	a, b := onNode(ep("10.98.0.2"), "node-a"), onNode(ep("10.98.0.3"), "node-b")
	in := newInformer()
	in.service(p, lb("web", "10.96.0.10", "10.97.0.100", corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "web-1", "web", httpPort, a, b))
	in.service(p, lb("local", "10.96.0.11", "10.97.0.101", corev1.ServiceExternalTrafficPolicyLocal, sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "local-1", "local", httpPort, a, b))
	in.service(p, lb("elsewhere", "10.96.0.12", "10.97.0.102", corev1.ServiceExternalTrafficPolicyLocal, sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "elsewhere-1", "elsewhere", httpPort, b))
	in.service(p, lb("empty", "10.96.0.13", "10.97.0.103", corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80)))
	sticky := withAffinity(lb("sticky", "10.96.0.14", "10.97.0.104", corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80)), 60)
	sticky.Spec.Ports[0].NodePort = 30200
	in.service(p, sticky)
	stickyLocal := withAffinity(lb("sticky-local", "10.96.0.15", "10.97.0.105", corev1.ServiceExternalTrafficPolicyLocal, sport("http", tcp, 80)), 60)
	stickyLocal.Spec.Ports[0].NodePort = 30201
	in.service(p, stickyLocal)
	in.slice(p, eslice("ns", "sticky-local-1", "sticky-local", httpPort, a, b))
	in.slice(p, eslice("ns", "sticky-1", "sticky", httpPort, a, b))
	n.sync(p)

	answers := func(t *testing.T, ns, addr string, count int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range count {
			answer, err := dial(ns, "tcp", addr)
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			got[answer]++
		}
		return got
	}
	t.Run("cluster policy: both endpoints, masqueraded", func(t *testing.T) {
		if got := answers(t, outside, "10.97.0.100:80", 40); got["a "+gateway] == 0 || got["b "+gateway] == 0 || len(got) != 2 {
			t.Errorf("answers (pod, client seen): %v; want a and b, each seeing the node %s", got, gateway)
		}
	})
	t.Run("local policy: this node's endpoint, client address kept", func(t *testing.T) {
		if got := answers(t, outside, "10.97.0.101:80", 20); got["a "+clientIP] != 20 {
			t.Errorf("answers: %v; want a seeing %s every time", got, clientIP)
		}
	})
	t.Run("session affinity: one endpoint", func(t *testing.T) {
		if got := answers(t, outside, "10.97.0.104:80", 20); len(got) != 1 {
			t.Errorf("answers: %v; want one pod every time", got)
		}
	})
	t.Run("session affinity through the node port: one endpoint", func(t *testing.T) {
		if got := answers(t, outside, nodeIP+":30200", 20); len(got) != 1 {
			t.Errorf("answers: %v; want one pod every time", got)
		}
	})
	t.Run("session affinity with local policy: this node's endpoint, client address kept", func(t *testing.T) {
		for _, addr := range []string{"10.97.0.105:80", nodeIP + ":30201"} {
			if got := answers(t, outside, addr, 20); got["a "+clientIP] != 20 {
				t.Errorf("%s: %v; want a seeing %s every time", addr, got, clientIP)
			}
		}
		if got := answers(t, podA.ns, "10.97.0.105:80", 20); len(got) != 1 {
			t.Errorf("from a pod: %v; want one pod every time", got)
		}
	})
	t.Run("from a pod", func(t *testing.T) {
		if got := answers(t, podA.ns, "10.97.0.100:80", 20); got["a "+gateway]+got["b 10.98.0.2"] != 20 || len(got) != 2 { // a reaching itself: hairpin, masqueraded
			t.Errorf("answers: %v", got)
		}
	})
	t.Run("local policy, endpoints elsewhere only: dropped", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		var timeout net.Error
		if answer, err := dialCtx(ctx, outside, "tcp", "10.97.0.102:80"); !errors.As(err, &timeout) || !timeout.Timeout() {
			t.Errorf("dial: %q, %v; want a timeout", answer, err)
		}
	})
	t.Run("local policy from a pod or the node: any endpoint, as in-cluster traffic", func(t *testing.T) {
		// The pod's address kept (b sees a), as to a cluster IP.
		if got := answers(t, podA.ns, "10.97.0.102:80", 10); got["b 10.98.0.2"] != 10 {
			t.Errorf("from a pod, endpoints elsewhere only: %v; want b seeing the pod every time", got)
		}
		if got := answers(t, podA.ns, "10.97.0.101:80", 40); got["a "+gateway]+got["b 10.98.0.2"] != 40 || len(got) != 2 {
			t.Errorf("from a pod, endpoints here and elsewhere: %v; want both", got)
		}
		// The node's own processes: masqueraded, b sees the node.
		if got := answers(t, n.ns, "10.97.0.102:80", 10); got["b "+gateway] != 10 {
			t.Errorf("from the node, endpoints elsewhere only: %v; want b seeing the node", got)
		}
	})
	t.Run("local policy, an endpoint arrives here, then the services go: chains follow", func(t *testing.T) {
		in.slice(p, eslice("ns", "elsewhere-1", "elsewhere", httpPort, a, b))
		n.sync(p)
		if got := answers(t, outside, "10.97.0.102:80", 10); got["a "+clientIP] != 10 {
			t.Errorf("answers: %v; want a seeing %s every time", got, clientIP)
		}
		in.slice(p, eslice("ns", "elsewhere-1", "elsewhere", httpPort, b))
		in.deleteService(p, "ns", "local")
		n.sync(p)
		chains := lbLocalChains(t, n, p)
		if len(chains) != 1 || chains[0] != "lb-local-1-0" {
			t.Errorf("lb-local chains %v; want only lb-local-1-0 (elsewhere's)", chains)
		}
	})
	t.Run("no endpoint: refused at once", func(t *testing.T) {
		if answer, err := dial(outside, "tcp", "10.97.0.103:80"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial: %q, %v; want connection refused", answer, err)
		}
	})
	t.Run("a port the service does not have: refused, not the node's own socket", func(t *testing.T) {
		l := n.listen("tcp", "0.0.0.0:10250")
		defer l.Close()
		if answer, err := dial(outside, "tcp", nodeIP+":10250"); err != nil {
			t.Fatalf("the node's own address: %q, %v; want the node's socket", answer, err)
		}
		if answer, err := dial(outside, "tcp", "10.97.0.100:10250"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial: %q, %v; want connection refused", answer, err)
		}
	})
	t.Run("address gone from the status: no rules", func(t *testing.T) {
		s := lb("web", "10.96.0.10", "10.97.0.100", corev1.ServiceExternalTrafficPolicyCluster, sport("http", tcp, 80))
		s.Status.LoadBalancer.Ingress = nil
		in.service(p, s)
		n.sync(p)
		l := n.listen("tcp", "0.0.0.0:80")
		defer l.Close()
		if answer, err := dial(outside, "tcp", "10.97.0.100:80"); err != nil || answer != "node "+clientIP {
			t.Errorf("dial: %q, %v; want the node's own socket", answer, err)
		}
	})
}

// lbLocalChains lists the table's lb-local-<N>-<M> chains.
func lbLocalChains(t *testing.T, n *testNode, p *Proxy) []string {
	t.Helper()
	var names []string
	if err := nsrun.At(n.ns, func() (err error) {
		names, err = p.nft.List(context.Background(), "chains")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "lb-local-") {
			out = append(out, n)
		}
	}
	return out
}
