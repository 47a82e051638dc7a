package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/up"
	"wharf.dev/wharf/internal/wire"
)

// ServicesConfig sizes the services benchmark.
type ServicesConfig struct {
	// Services with Endpoints endpoints each are loaded for the agent's
	// memory and a change's time at that size.
	Services, Endpoints int
	// Conns clients run for Duration per load round.
	Conns    int
	Duration time.Duration
	// Changes are timed one by one (endpoint added, removed; DNS names).
	Changes int
}

// Services measures a node's service proxy and DNS on a `wharf up`
// cluster of this machine (root): requests through a cluster IP against
// straight to the pod, the time an endpoint change takes to reach the
// kernel's rules and a new service to resolve, the agent's memory with
// many services, and DNS queries per second (dnsperf, when installed).
// The clients run on the node itself, as the host's own connections.
func Services(ctx context.Context, env Env, out io.Writer, cfg ServicesConfig) error {
	o, c, err := upNode(ctx, env)
	if err != nil {
		return err
	}
	defer up.Down(context.WithoutCancel(ctx), io.Discard, o, true)

	dnsAddr, err := nodeDNS(ctx, c, "bench")
	if err != nil {
		return err
	}
	be, err := startBackend(ctx, c)
	if err != nil {
		return err
	}
	podIP := be.podIP
	fmt.Fprintf(out, "services: a pod at %s, its twin behind service %s (node port %q, load balancer %s), node DNS %s\n", podIP, be.clusterIP, be.nodePort, be.lbIP, dnsAddr)

	for _, keepAlive := range []bool{true, false} {
		mode := "keep-alive"
		if !keepAlive {
			mode = "a connection per request"
		}
		var direct, viaService, viaNodePort, viaLB load
		for range 3 { // alternating rounds: the machine's drift hits all
			direct.add(runLoad(ctx, "http://"+podIP+":8080/healthz", cfg.Conns, cfg.Duration, keepAlive))
			viaService.add(runLoad(ctx, "http://"+be.clusterIP+"/healthz", cfg.Conns, cfg.Duration, keepAlive))
			viaLB.add(runLoad(ctx, "http://"+be.lbIP+"/healthz", cfg.Conns, cfg.Duration, keepAlive))
			if be.nodePort != "" {
				viaNodePort.add(runLoad(ctx, "http://"+be.nodePort+"/healthz", cfg.Conns, cfg.Duration, keepAlive))
			}
		}
		nodePort := "not served on a loopback node address"
		if be.nodePort != "" {
			nodePort = fmt.Sprintf("%s (%.0f%% of direct)", viaNodePort.summary(), 100*viaNodePort.rps()/direct.rps())
		}
		fmt.Fprintf(out, "services: %s, %d clients: pod IP %s; cluster IP %s (%.0f%% of direct); load balancer address %s (%.0f%% of direct); node port %s\n",
			mode, cfg.Conns, direct.summary(), viaService.summary(), 100*viaService.rps()/direct.rps(),
			viaLB.summary(), 100*viaLB.rps()/direct.rps(), nodePort)
	}

	var expose Latencies
	for i := range cfg.Changes {
		name := fmt.Sprintf("lb-%d", i)
		_, d, err := exposeLoadBalancer(ctx, c, name, map[string]string{"bench": "backend"}, corev1.ServiceExternalTrafficPolicyCluster)
		if err != nil {
			return err
		}
		expose.Add(d)
		if err := c.CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "services: LoadBalancer service create to its address answering on this machine: %s\n", expose.Summary())

	added, removed, err := endpointChanges(ctx, c, podIP, cfg.Changes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "services: EndpointSlice write to the kernel's rules (a connection through the cluster IP), endpoint added %s; removed %s\n", added.Summary(), removed.Summary())
	resolved, err := dnsChanges(ctx, c, dnsAddr, cfg.Changes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "services: Service create to its name resolving at the node's DNS %s\n", resolved.Summary())

	start := time.Now()
	if err := loadServices(ctx, c, cfg.Services, cfg.Endpoints); err != nil {
		return err
	}
	fmt.Fprintf(out, "services: %d services x %d endpoints written in %s\n", cfg.Services, cfg.Endpoints, round(time.Since(start)))
	added, removed, err = endpointChanges(ctx, c, podIP, cfg.Changes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "services: with them, endpoint added %s; removed %s\n", added.Summary(), removed.Summary())
	fmt.Fprintf(out, "services: agent memory with %d services and %d endpoints: %s\n", cfg.Services, cfg.Services*cfg.Endpoints, agentMemory(o.StateDir))
	return dnsperf(ctx, out, dnsAddr, cfg.Services)
}

// nodeDNS is the node's DNS server: its pod CIDR's first address.
func nodeDNS(ctx context.Context, c kubernetes.Interface, node string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if err != nil {
				return "", err
			}
			return netip.AddrPortFrom(wire.PodGateway(p), 53).String(), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("the node got no pod CIDR")
}

// startBackend runs two identical testapp servers, the second behind a
// LoadBalancer service, and returns where each answers. The client
// calls each through its own path only: connections to one pod both
// directly and through the cluster IP, from one address, can meet the
// conntrack entry of an earlier connection on the other path with the
// same ports, and be refused (kube-proxy's clusters share that).
func startBackend(ctx context.Context, c kubernetes.Interface) (backend, error) {
	var be backend
	direct, behind := sleepPod("direct"), sleepPod("backend")
	for _, p := range []*corev1.Pod{direct, behind} {
		p.Labels = map[string]string{"bench": p.Name}
		p.Spec.Containers[0].Args = quietServer
	}
	if err := runPods(ctx, c, []*corev1.Pod{direct, behind}, nil); err != nil {
		return be, err
	}
	svc, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: behind.Labels,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return be, err
	}
	got, err := c.CoreV1().Pods("default").Get(ctx, direct.Name, metav1.GetOptions{})
	if err != nil {
		return be, err
	}
	be = backend{podIP: got.Status.PodIP, clusterIP: svc.Spec.ClusterIP,
		nodePort: net.JoinHostPort(got.Status.HostIP, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))}
	for deadline := time.Now().Add(30 * time.Second); be.lbIP == ""; time.Sleep(10 * time.Millisecond) {
		if s, err := c.CoreV1().Services("default").Get(ctx, svc.Name, metav1.GetOptions{}); err == nil && len(s.Status.LoadBalancer.Ingress) > 0 {
			be.lbIP = s.Status.LoadBalancer.Ingress[0].IP
		}
		if time.Now().After(deadline) {
			return be, errors.New("the backend's service got no load balancer address")
		}
	}
	// Through the service, its address and node port once: their rules are in.
	urls := []string{"http://" + be.clusterIP + "/healthz", "http://" + be.lbIP + "/healthz"}
	if ip, err := netip.ParseAddr(got.Status.HostIP); err == nil && ip.IsLoopback() {
		be.nodePort = "" // not served on a loopback node address
	} else {
		urls = append(urls, "http://"+be.nodePort+"/healthz")
	}
	for _, url := range urls {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := (&http.Client{Timeout: time.Second}).Get(url)
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				return be, fmt.Errorf("%s: %w", url, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return be, nil
}

// backend is where startBackend's pods answer: the first pod's address,
// and its twin's service's cluster IP, load balancer address and node
// port (address:port; "" when the node's address is loopback, where node
// ports are not served).
type backend struct{ podIP, clusterIP, lbIP, nodePort string }

// load is what rounds of runLoad measured.
type load struct {
	requests, failures int
	firstErr           error
	elapsed            time.Duration
	lat                Latencies
}

func (l *load) add(r *load) {
	l.requests += r.requests
	l.failures += r.failures
	if l.firstErr == nil {
		l.firstErr = r.firstErr
	}
	l.elapsed += r.elapsed
	l.lat.merge(&r.lat)
}

func (l *load) rps() float64 { return float64(l.requests) / l.elapsed.Seconds() }

func (l *load) summary() string {
	s := fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, max %s, %d failed", l.rps(), round(l.lat.Percentile(50)), round(l.lat.Percentile(99)), round(l.lat.Percentile(100)), l.failures)
	if l.firstErr != nil {
		s += fmt.Sprintf(" (first: %v)", l.firstErr)
	}
	return s
}

// runLoad GETs url from conns clients for d.
// Without keepAlive, each request has a connection of its own, which the
// client closes (so TIME_WAIT stays on the client, whose port choice
// avoids it, not on the server, where a reused port would meet it).
func runLoad(ctx context.Context, url string, conns int, d time.Duration, keepAlive bool) *load {
	res := &load{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			var mine []time.Duration
			var firstErr error
			failures := 0
			for time.Now().Before(stop) && ctx.Err() == nil {
				t := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if !keepAlive {
					tr.CloseIdleConnections()
				}
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					failures++
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			defer mu.Unlock()
			res.requests += len(mine)
			res.failures += failures
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			for _, x := range mine {
				res.lat.Add(x)
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// endpointChanges times, n times each, an endpoint added to a selectorless
// service's slice until a connection through its cluster IP is accepted,
// and removed until one is refused.
func endpointChanges(ctx context.Context, c kubernetes.Interface, podIP string, n int) (added, removed *Latencies, err error) {
	added, removed = &Latencies{}, &Latencies{}
	name := fmt.Sprintf("probe-%d", time.Now().UnixNano()%100000)
	svc, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, err
	}
	slices := c.DiscoveryV1().EndpointSlices("default")
	es, err := slices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, err
	}
	target := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	if _, err := waitConnect(ctx, target, false); err != nil {
		return nil, nil, fmt.Errorf("service %s never refused: %w", name, err)
	}
	for range n {
		es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{podIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}
		if es, err = slices.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			return nil, nil, err
		}
		d, err := waitConnect(ctx, target, true)
		if err != nil {
			return nil, nil, err
		}
		added.Add(d)
		es.Endpoints = nil
		if es, err = slices.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			return nil, nil, err
		}
		if d, err = waitConnect(ctx, target, false); err != nil {
			return nil, nil, err
		}
		removed.Add(d)
	}
	return added, removed, nil
}

// waitConnect dials target every millisecond until it is accepted
// (accepted) or refused (!accepted), and returns how long that took.
func waitConnect(ctx context.Context, target string, accepted bool) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		conn, err := (&net.Dialer{Timeout: 200 * time.Millisecond}).DialContext(ctx, "tcp", target)
		if err == nil {
			conn.Close()
		}
		switch {
		case accepted && err == nil, !accepted && errors.Is(err, syscall.ECONNREFUSED):
			return time.Since(start), nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	want := "refused"
	if accepted {
		want = "accepted"
	}
	return 0, fmt.Errorf("connections to %s not %s within 30s", target, want)
}
