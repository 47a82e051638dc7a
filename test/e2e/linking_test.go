//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/testserver"
	"wharf.dev/wharf/internal/wire"
)

// TestLinking is the Services issue's session on a `wharf up` cluster:
// the guestbook's frontend reaches its backend by name through the cluster
// IP, resolves it, has its variables; scaling adds backends; a service
// without endpoints refuses at once; the node itself reaches a service;
// the node's nftables table goes with `wharf down --purge`.
func TestLinking(t *testing.T) {
	resolvConf, upstreamQueries := startUpstreamDNS(t)
	c := upClusterResolving(t, resolvConf)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")
	testserver.Contains(t, c.Run("apply", "-f", "examples/guestbook/"), "service/backend created", "deployment.apps/frontend created")
	for _, d := range []string{"backend", "frontend"} {
		testserver.Contains(t, c.Run("rollout", "status", "deployment/"+d, "--timeout=90s"), "successfully rolled out")
	}
	clusterIP := strings.TrimSpace(c.Run("get", "svc", "backend", "-o", "jsonpath={.spec.clusterIP}"))

	// By name, through the cluster IP, to every ready backend.
	hostnames := func(n int) map[string]bool {
		// busybox's timeout, not wget -T: Debian's static busybox crashes on -T.
		script := fmt.Sprintf("for i in $(seq %d); do timeout 5 wget -qO- http://backend/ | grep hostname; done", n)
		out := c.Run("exec", "deploy/frontend", "--", "sh", "-c", script)
		seen := map[string]bool{}
		for _, m := range regexp.MustCompile(`"hostname": "([^"]+)"`).FindAllStringSubmatch(out, -1) {
			seen[m[1]] = true
		}
		return seen
	}
	if seen := hostnames(30); len(seen) != 2 {
		t.Errorf("30 requests to http://backend/ reached %v, want both backends", seen)
	}

	// Hairpin: a backend reaches itself through its own service.
	self := strings.Fields(c.Run("get", "pods", "-l", "app=backend", "-o", "jsonpath={.items[*].metadata.name}"))[0]
	hairpin := c.Run("exec", self, "--", "sh", "-c", "for i in $(seq 30); do timeout 5 wget -qO- http://backend/ | grep hostname; done")
	if !strings.Contains(hairpin, `"hostname": "`+self+`"`) || strings.Count(hairpin, "hostname") != 30 {
		t.Errorf("backend %s through its own service, 30 calls:\n%s\nwant every call answered, some by itself", self, hairpin)
	}

	// DNS: the service's name, from busybox's nslookup and Go's resolver.
	testserver.Contains(t, c.Run("exec", "deploy/frontend", "--", "nslookup", "backend.default.svc.cluster.local"), clusterIP)
	testserver.Contains(t, c.Run("exec", "deploy/frontend", "--", "/testapp", "dns-lookup", "backend"), clusterIP)
	if out, err := c.Cmd("", "exec", "deploy/frontend", "--", "/testapp", "dns-lookup", "nothing.default.svc.cluster.local").CombinedOutput(); err == nil {
		t.Errorf("a missing service resolved:\n%s", out)
	}

	// A headless service: a record per ready pod, and the pod's own name
	// under it (hostname and subdomain).
	c.RunIn(`apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  containers: [{name: db, image: registry.wharf.local/wharf/testapp:v1, args: [serve, --port=5432]}]
`, "apply", "-f", "-")
	c.Eventually(`db-0\s+1/1\s+Running`, "get", "pod", "db-0")
	dbIP := strings.TrimSpace(c.Run("get", "pod", "db-0", "-o", "jsonpath={.status.podIP}"))
	testserver.WaitFor(t, "the headless service's records", 30*time.Second, func() (bool, error) {
		out, err := c.Cmd("", "exec", "deploy/frontend", "--", "sh", "-c", "/testapp dns-lookup db && /testapp dns-lookup db-0.db").CombinedOutput()
		return err == nil && strings.Count(string(out), dbIP) == 2, fmt.Errorf("%v: %s", err, out)
	})

	// A flood: 10,000 lookups, 50 at a time, at the node's DNS server
	// (the pods' gateway; `wharf up`'s node is this namespace): no
	// timeout, every answer right.
	gateway := strings.TrimSpace(c.Run("get", "node", "e2e", "-o", "jsonpath={.spec.podCIDR}"))
	if p, err := netip.ParsePrefix(gateway); err == nil {
		dnsFlood(t, netip.AddrPortFrom(wire.PodGateway(p), 53).String(), "backend.default.svc.cluster.local.", clusterIP, 10000, 50)
	} else {
		t.Errorf("node pod CIDR %q: %v", gateway, err)
	}

	// A name outside the cluster: forwarded to the node's resolver (the
	// test's own, on loopback), then answered from the cache.
	for range 2 {
		testserver.Contains(t, c.Run("exec", "deploy/frontend", "--", "/testapp", "dns-lookup", "www.example.test."), "192.0.2.10")
	}
	if n := upstreamQueries.Load(); n != 1 {
		t.Errorf("the upstream resolver got %d queries for www.example.test, want 1 (then the cache)", n)
	}
	// An ExternalName service: a CNAME, and its target's address with it.
	c.Run("create", "service", "externalname", "ext", "--external-name", "www.example.test")
	testserver.WaitFor(t, "the ExternalName service resolving", 30*time.Second, func() (bool, error) {
		out, err := c.Cmd("", "exec", "deploy/frontend", "--", "/testapp", "dns-lookup", "ext").CombinedOutput()
		return err == nil && strings.Contains(string(out), "192.0.2.10"), fmt.Errorf("%v: %s", err, out)
	})

	// The variables of the services that existed when the pod started.
	env := c.Run("exec", "deploy/frontend", "--", "env")
	testserver.Contains(t, env, "BACKEND_SERVICE_HOST="+clusterIP, "BACKEND_SERVICE_PORT=80", "BACKEND_PORT=tcp://"+clusterIP+":80", "KUBERNETES_SERVICE_HOST=")

	// Scaling: new backends get traffic.
	c.Run("scale", "deploy/backend", "--replicas", "5")
	testserver.Contains(t, c.Run("rollout", "status", "deployment/backend", "--timeout=90s"), "successfully rolled out")
	testserver.WaitFor(t, "traffic to all 5 backends", 30*time.Second, func() (bool, error) {
		seen := hostnames(40)
		return len(seen) == 5, fmt.Errorf("reached %v", seen)
	})

	// Session affinity keeps a client on one backend; without it, the
	// spread returns.
	c.Run("patch", "svc", "backend", "-p", `{"spec":{"sessionAffinity":"ClientIP"}}`)
	testserver.WaitFor(t, "one backend for the client", 30*time.Second, func() (bool, error) {
		seen := hostnames(20)
		return len(seen) == 1, fmt.Errorf("reached %v", seen)
	})
	c.Run("patch", "svc", "backend", "-p", `{"spec":{"sessionAffinity":"None"}}`)
	testserver.WaitFor(t, "the spread back", 30*time.Second, func() (bool, error) {
		seen := hostnames(20)
		return len(seen) > 1, fmt.Errorf("reached %v", seen)
	})

	// A service with no endpoints refuses at once: no hang.
	c.Run("create", "service", "clusterip", "empty", "--tcp=80:8080")
	start := time.Now()
	out, err := c.Cmd("", "exec", "deploy/frontend", "--", "timeout", "10", "wget", "-qO-", "http://empty/").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") {
		t.Errorf("a service without endpoints: %v\n%s\nwant connection refused", err, out)
	}
	t.Logf("no endpoints: refused after %s (kubectl exec included)", time.Since(start).Round(time.Millisecond))

	// The node itself (here, the machine: `wharf up` runs in its namespace).
	testserver.Contains(t, httpGet(t, "http://"+clusterIP+"/"), "guestbook backend")

	// A LoadBalancer service gets an address of the node's pool, which
	// answers on this machine (held on lo, announced nowhere).
	c.Run("expose", "deployment/backend", "--name", "backend-lb", "--type", "LoadBalancer", "--port", "80", "--target-port", "8080")
	lbIP := strings.TrimSpace(c.Eventually(`^\d+\.\d+\.\d+\.\d+$`, "get", "svc", "backend-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"))
	testserver.Contains(t, c.Run("get", "svc", "backend-lb"), lbIP)
	testserver.Contains(t, httpGet(t, "http://"+lbIP+"/"), "guestbook backend")
	if out, _ := exec.Command("ip", "-br", "addr", "show", "dev", "lo").CombinedOutput(); !strings.Contains(string(out), lbIP+"/32") {
		t.Errorf("load balancer address %s not on lo:\n%s", lbIP, out)
	}
	// An address asked for outside the pool: pending, with an event that
	// says why.
	c.RunIn("apiVersion: v1\nkind: Service\nmetadata: {name: bad-lb, annotations: {wharf.dev/load-balancer-ips: 192.0.2.10}}\n"+
		"spec: {type: LoadBalancer, selector: {app: backend}, ports: [{port: 80}]}\n", "apply", "-f", "-")
	c.Eventually(`AllocationFailed.*192\.0\.2\.10 is not in the load balancer pool`, "describe", "svc", "bad-lb")
	testserver.Contains(t, c.Run("get", "svc", "bad-lb"), "<pending>")
	c.Run("delete", "svc", "bad-lb")
	// The pool exhausted (a /28: 14 addresses, one of them the ingress
	// load balancer's): the services left over stay pending, with an
	// event that says why; deleting one gives its address to another.
	var fill strings.Builder
	for i := range 15 {
		fmt.Fprintf(&fill, "---\napiVersion: v1\nkind: Service\nmetadata: {name: fill-%d, labels: {fill: \"true\"}}\nspec: {type: LoadBalancer, selector: {app: backend}, ports: [{port: 80}]}\n", i)
	}
	c.RunIn(fill.String(), "apply", "-f", "-")
	pending := c.Eventually(`AllocationFailed.*no free address in the load balancer pool`, "get", "events", "--field-selector", "reason=AllocationFailed")
	testserver.Contains(t, pending, "service/fill-")
	// fills lists the fill services, those with an address first.
	fills := func() (held, waiting []string) {
		l, err := c.client.CoreV1().Services("default").List(testContext(t), metav1.ListOptions{LabelSelector: "fill=true"})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Items {
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				held = append(held, s.Name)
			} else {
				waiting = append(waiting, s.Name)
			}
		}
		return held, waiting
	}
	var held, waiting []string
	testserver.WaitFor(t, "the pool full, the rest pending", 10*time.Second, func() (bool, error) {
		held, waiting = fills()
		return len(held)+len(waiting) == 15 && len(waiting) > 0 && len(held) >= 12, fmt.Errorf("held %v, pending %v", held, waiting)
	})
	c.Run("delete", "svc", held[0])
	testserver.WaitFor(t, "a pending service given the freed address", 10*time.Second, func() (bool, error) {
		_, w := fills()
		return len(w) == len(waiting)-1, fmt.Errorf("pending %v, before %v", w, waiting)
	})
	c.Run("delete", "svc", "-l", "fill=true")
	// Deleted: the address goes from lo, and is refused rather than sent anywhere.
	c.Run("delete", "svc", "backend-lb")
	testserver.WaitFor(t, "the address gone from lo", 10*time.Second, func() (bool, error) {
		out, err := exec.Command("ip", "-br", "addr", "show", "dev", "lo").CombinedOutput()
		return !strings.Contains(string(out), lbIP+"/"), err
	})
	if answer, err := getOnce("http://" + lbIP + "/"); err == nil {
		t.Errorf("%s answered after its service's deletion: %q", lbIP, answer)
	}

	t.Run("traffic never fails while backends scale, roll out, and the agent and containerd restart", func(t *testing.T) {
		serviceTrafficNeverFails(t, c)
	})
	t.Run("bad input is refused, the node undisturbed", func(t *testing.T) {
		for _, tc := range []struct{ name, spec, want string }{
			{"port 0", `ports: [{port: 0}]`, "spec.ports[0].port: Invalid value: 0"},
			{"port 70000", `ports: [{port: 70000}]`, "spec.ports[0].port: Invalid value: 70000"},
			{"duplicate port", `ports: [{name: a, port: 80}, {name: b, port: 80}]`, "spec.ports[1]: Duplicate value"},
			{"unknown protocol", `ports: [{port: 80, protocol: QUIC}]`, `spec.ports[0].protocol: Unsupported value: "QUIC"`},
			{"ExternalName not a DNS name", `{type: ExternalName, externalName: "not a name!"}`, "spec.externalName: Invalid value"},
		} {
			manifest := "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: " + tc.spec + "\n"
			if !strings.HasPrefix(tc.spec, "{") {
				manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {" + tc.spec + "}\n"
			}
			out, err := c.Cmd(manifest, "apply", "-f", "-").CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("%s: %v\n%s\nwant an error naming %q", tc.name, err, out, tc.want)
			}
		}
		// A selector that matches nothing: an empty endpoint set that refuses.
		c.RunIn("apiVersion: v1\nkind: Service\nmetadata: {name: nobody}\nspec: {selector: {app: nobody}, ports: [{port: 80}]}\n", "apply", "-f", "-")
		out, err := c.Cmd("", "exec", "deploy/frontend", "--", "timeout", "10", "wget", "-qO-", "http://nobody/").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refused") {
			t.Errorf("a service selecting nothing: %v\n%s\nwant connection refused", err, out)
		}
		testserver.Contains(t, c.Run("exec", "deploy/frontend", "--", "wget", "-qO-", "http://backend/"), "guestbook backend")
	})

	// The table goes with the node.
	table := nodeServiceTable(t, c)
	c.wharf("down", "--state-dir", c.stateDir, "--purge")
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), table) {
		t.Errorf("table %s left after down --purge:\n%s", table, out)
	}
}

// dnsFlood sends n queries for name, conc at a time, to server over UDP,
// and fails the test on any timeout or wrong answer.
func dnsFlood(t *testing.T, server, name, want string, n, conc int) {
	t.Helper()
	var failed atomic.Int64
	var first atomic.Value
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &dns.Client{Timeout: 2 * time.Second}
			for range next {
				r, _, err := client.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), server)
				if err == nil && (len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want) {
					err = fmt.Errorf("answer %v", r.Answer)
				}
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("DNS flood: %d queries in %s, %d failed", n, time.Since(start).Round(time.Millisecond), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d queries failed (first: %v)", failed.Load(), n, first.Load())
	}
}

// startUpstreamDNS runs the resolver the node forwards outside names to,
// on a loopback address of its own (the node of `wharf up` runs in the
// machine's namespace): www.example.test is 192.0.2.10, anything else does
// not exist. It returns a resolv.conf naming it and a count of the
// queries for www.example.test it answered.
func startUpstreamDNS(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var queries atomic.Int64
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		if len(r.Question) == 1 && strings.EqualFold(r.Question[0].Name, "www.example.test.") && r.Question[0].Qtype == dns.TypeA {
			queries.Add(1)
			rr, _ := dns.NewRR("www.example.test. 60 IN A 192.0.2.10")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	addr := fmt.Sprintf("127.%d.%d.%d:53", 100+rand.IntN(100), rand.IntN(250), 1+rand.IntN(250))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	path := filepath.Join(t.TempDir(), "resolv.conf")
	host, _, _ := net.SplitHostPort(addr)
	if err := os.WriteFile(path, []byte("nameserver "+host+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, &queries
}

// nodeServiceTable is the name of the node's service table, from its record.
func nodeServiceTable(t *testing.T, c *cluster) string {
	t.Helper()
	out, err := os.ReadFile(filepath.Join(c.stateDir, "node", "node.json"))
	m := regexp.MustCompile(`"serviceTable":\s*"([^"]+)"`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("node record: %v %s", err, out)
	}
	table := string(m[1])
	if tables, _ := exec.Command("nft", "list", "tables").CombinedOutput(); !strings.Contains(string(tables), table) {
		t.Fatalf("no table %s while the node runs:\n%s", table, tables)
	}
	return table
}

// serviceTrafficNeverFails runs a client pod that calls the backend every
// 20 ms through its service while the backends scale 2→5→1, roll out,
// and the node's agent and containerd are killed and come back: not one
// request may fail.
func serviceTrafficNeverFails(t *testing.T, c *cluster) {
	c.Run("run", "client", "--image", "registry.wharf.local/wharf/testapp:v1", "--restart=Never", "--",
		"client", "--url", "http://backend/healthz", "--interval", "20ms", "--timeout", "3s")
	c.Eventually(`client\s+1/1\s+Running`, "get", "pod", "client")
	defer c.Run("delete", "pod", "client", "--grace-period=1")
	answered := func() (ok, failed int, errs []string) {
		for _, line := range strings.Split(c.Run("logs", "client"), "\n") {
			switch {
			case strings.HasPrefix(line, "200 "):
				ok++
			case line != "":
				failed++
				errs = append(errs, line)
			}
		}
		return ok, failed, errs
	}
	testserver.WaitFor(t, "the client's first answers", 30*time.Second, func() (bool, error) {
		ok, _, _ := answered()
		return ok > 10, fmt.Errorf("%d answers", ok)
	})

	for _, replicas := range []string{"5", "1", "2"} {
		c.Run("scale", "deploy/backend", "--replicas", replicas)
		c.Run("rollout", "status", "deployment/backend", "--timeout=90s")
	}
	c.Run("rollout", "restart", "deployment/backend")
	c.Run("rollout", "status", "deployment/backend", "--timeout=90s")
	// Old pods stop after their preStop second: wait them out.
	testserver.WaitFor(t, "the old backends gone", 60*time.Second, func() (bool, error) {
		out := c.Run("get", "pods", "-l", "app=backend", "--no-headers")
		return strings.Count(out, "\n") == 2 && !strings.Contains(out, "Terminating"), fmt.Errorf("%s", out)
	})

	killPidFile(t, filepath.Join(c.stateDir, "run", "agent.pid"))
	time.Sleep(500 * time.Millisecond) // traffic while no agent runs
	c.up()
	pidFile := filepath.Join(c.stateDir, "node", "containerd", "containerd.pid")
	old := killPidFile(t, pidFile)
	testserver.WaitFor(t, "containerd restarted by the agent", 30*time.Second, func() (bool, error) {
		pid, err := readPid(pidFile)
		return err == nil && pid != old, err
	})
	time.Sleep(time.Second) // traffic after both came back

	ok, failed, errs := answered()
	t.Logf("client: %d answers, %d failures", ok, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed:\n%s", failed, ok+failed, strings.Join(errs, "\n"))
	}
}
