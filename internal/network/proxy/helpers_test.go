package proxy

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/knftables"
)

const testTable = "wharf-svc-test"

// countingNFT records the transactions run through it and can fail them.
type countingNFT struct {
	knftables.Interface
	mu       sync.Mutex
	txs      []*knftables.Transaction
	elapsed  time.Duration
	failNext error
	failIf   string // fail the transactions that contain it
}

func (c *countingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.txs = append(c.txs, tx)
	if err := c.failNext; err != nil {
		c.failNext = nil
		return err
	}
	if c.failIf != "" && strings.Contains(tx.String(), c.failIf) {
		c.failIf = ""
		return errors.New("nft: failed as the test asked")
	}
	start := time.Now()
	err := c.Interface.Run(ctx, tx)
	c.elapsed += time.Since(start)
	return err
}

// last returns the last transaction run and how many there were.
func (c *countingNFT) last() (*knftables.Transaction, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.txs) == 0 {
		return nil, 0
	}
	return c.txs[len(c.txs)-1], len(c.txs)
}

// fakeProxy is a Proxy over knftables' fake.
type fakeProxy struct {
	*Proxy
	fake *knftables.Fake
	nft  *countingNFT
}

func newFakeProxy(t *testing.T, cfg Config) *fakeProxy {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, testTable)
	return newProxyOver(t, cfg, fake)
}

func newProxyOver(t *testing.T, cfg Config, fake *knftables.Fake) *fakeProxy {
	t.Helper()
	nft := &countingNFT{Interface: fake}
	cfg.Table, cfg.NFT = testTable, nft
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeProxy{Proxy: p, fake: fake, nft: nft}
}

func (f *fakeProxy) sync(t *testing.T) {
	t.Helper()
	if err := f.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

var (
	hashRE = regexp.MustCompile(`\b(service|affinity)-[A-Z2-7]{8}-`)
	genRE  = func() *regexp.Regexp {
		var bases []string
		for _, d := range storeDefs {
			bases = append(bases, regexp.QuoteMeta(d.base))
		}
		return regexp.MustCompile(`\b(` + strings.Join(bases, "|") + `)-[ab]\b`)
	}()
)

// normalize drops the table's name, the generation of the shared sets
// and maps, and puts HASH for the hashes in names.
func normalize(line string) string {
	line = strings.Replace(line, " ip "+testTable, "", 1)
	line = genRE.ReplaceAllString(line, "$1")
	return hashRE.ReplaceAllString(line, "$1-HASH-")
}

// dump returns the fake's ruleset one object a line, normalized, sorted by kind and name as
// the fake does but for the hashes (rules stay in order in their chain;
// elements are sorted, the fake keeps them in insertion order).
func (f *fakeProxy) dump() []string {
	lines := strings.Split(strings.TrimSpace(f.fake.Dump()), "\n")
	for i, l := range lines {
		lines[i] = normalize(l)
	}
	kinds := []string{"table", "chain", "set", "map", "rule", "element"}
	key := func(l string) (int, string) {
		f := strings.Fields(l)
		if f[1] == "rule" {
			return slices.Index(kinds, f[1]), f[2]
		}
		return slices.Index(kinds, f[1]), l
	}
	slices.SortStableFunc(lines, func(a, b string) int {
		ka, na := key(a)
		kb, nb := key(b)
		return cmp.Or(cmp.Compare(ka, kb), strings.Compare(na, nb))
	})
	return lines
}

// minus returns the lines of a not in b, in order.
func minus(a, b []string) []string {
	seen := map[string]int{}
	for _, l := range b {
		seen[l]++
	}
	var out []string
	for _, l := range a {
		if seen[l] > 0 {
			seen[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, Ports: ports},
	}
	if ip != "" {
		s.Spec.ClusterIPs = []string{ip}
	}
	return s
}

func sport(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port}
}

func withAffinity(s *corev1.Service, seconds int32) *corev1.Service {
	s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	if seconds > 0 {
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &seconds}}
	}
	return s
}

func withLocal(s *corev1.Service) *corev1.Service {
	s.Spec.InternalTrafficPolicy = knftables.PtrTo(corev1.ServiceInternalTrafficPolicyLocal)
	return s
}

func eslice(ns, name, service string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func eport(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}

func ep(ip string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: knftables.PtrTo(true)}}
}

func notReady(e discoveryv1.Endpoint) discoveryv1.Endpoint {
	e.Conditions.Ready = knftables.PtrTo(false)
	return e
}

func terminating(e discoveryv1.Endpoint) discoveryv1.Endpoint {
	e.Conditions.Ready, e.Conditions.Serving, e.Conditions.Terminating = nil, knftables.PtrTo(true), knftables.PtrTo(true)
	return e
}

func onNode(e discoveryv1.Endpoint, node string) discoveryv1.Endpoint {
	e.NodeName = &node
	return e
}
