package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// dnsChanges times, n times, a new service's create until its name
// resolves at the node's DNS server.
func dnsChanges(ctx context.Context, c kubernetes.Interface, server string, n int) (*Latencies, error) {
	lat := &Latencies{}
	client := &dns.Client{Timeout: 200 * time.Millisecond}
	for i := range n {
		name := fmt.Sprintf("dns-%d-%d", time.Now().UnixNano()%100000, i)
		q := new(dns.Msg).SetQuestion(name+".default.svc.cluster.local.", dns.TypeA)
		start := time.Now()
		if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		for {
			r, _, err := client.ExchangeContext(ctx, q, server)
			if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
				lat.Add(time.Since(start))
				break
			}
			if time.Since(start) > 30*time.Second {
				return nil, fmt.Errorf("%s did not resolve within 30s (%v)", name, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return lat, nil
}

// loadServices writes n selectorless services, each with a slice of
// endpoints addresses (in 100.64.0.0/10, which nothing here answers and
// nothing connects to: the rules are what counts).
func loadServices(ctx context.Context, c kubernetes.Interface, n, endpoints int) error {
	return parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("load-%d", i)
		if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for j := range endpoints {
			k := i*endpoints + j
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("100.%d.%d.%d", 64+k>>16, (k>>8)&255, k&255)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		if _, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("endpoint slice %s: %w", name, err)
		}
		return nil
	})
}

// dnsperf runs Debian's dnsperf against the node's DNS server: the
// services' names (answered from the agent's memory) for 10 s. Skipped
// when dnsperf is not installed.
func dnsperf(ctx context.Context, out io.Writer, server string, services int) error {
	bin, err := exec.LookPath("dnsperf")
	if err != nil {
		fmt.Fprintln(out, "services: dnsperf not installed (Debian package dnsperf): DNS queries per second skipped")
		return nil
	}
	dir, err := os.MkdirTemp("", "wharf-dnsperf")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	queries := filepath.Join(dir, "queries")
	var b strings.Builder
	for i := range max(services, 1) {
		fmt.Fprintf(&b, "load-%d.default.svc.cluster.local A\n", i)
	}
	if err := os.WriteFile(queries, []byte(b.String()), 0o644); err != nil {
		return err
	}
	host, port, _ := strings.Cut(server, ":")
	cmd := exec.CommandContext(ctx, bin, "-s", host, "-p", port, "-d", queries, "-l", "10", "-c", "8", "-T", "2", "-q", "500")
	raw, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dnsperf: %w\n%s", err, raw)
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, key := range []string{"Queries sent", "Queries completed", "Queries lost", "Response codes", "Queries per second", "Average Latency", "Latency StdDev"} {
			if strings.HasPrefix(line, key) {
				fmt.Fprintf(out, "services: dnsperf, %d cluster names, 8 clients: %s\n", services, line)
			}
		}
	}
	return nil
}
