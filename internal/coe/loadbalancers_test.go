package coe

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/testserver"
	"wharf.dev/wharf/internal/wire"
)

func TestFreeBlock(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		pool  string
		taken []string
		want  string // "" none
	}{
		{"10.0.0.192/26", nil, "10.0.0.192/28"},
		{"10.0.0.192/26", []string{"10.0.0.192/28"}, "10.0.0.208/28"},
		{"10.0.0.192/26", []string{"10.0.0.192/28", "10.0.0.224/28"}, "10.0.0.208/28"},
		{"10.0.0.192/26", []string{"10.0.0.200/29"}, "10.0.0.208/28"}, // a smaller block of an older pool
		{"10.0.0.192/26", []string{"10.0.0.0/24"}, ""},
		{"10.0.0.192/26", []string{"10.0.0.192/28", "10.0.0.208/28", "10.0.0.224/28", "10.0.0.240/28"}, ""},
		{"10.0.0.248/30", nil, "10.0.0.248/30"}, // smaller than a block: the whole pool
		{"10.0.0.248/30", []string{"10.0.0.249/32"}, ""},
		{"255.255.255.224/27", []string{"255.255.255.224/28"}, "255.255.255.240/28"}, // no wrap-around at the top
	}
	for _, tt := range tests {
		var taken []netip.Prefix
		for _, s := range tt.taken {
			taken = append(taken, p(s))
		}
		got, ok := freeBlock(p(tt.pool), taken)
		if (tt.want == "" && ok) || (tt.want != "" && got != p(tt.want)) {
			t.Errorf("freeBlock(%s, %v) = %v, %v; want %q", tt.pool, tt.taken, got, ok, tt.want)
		}
	}
}

func TestLoadBalancerList(t *testing.T) {
	svc := func(name string, typ corev1.ServiceType, ip string, ports ...corev1.ServicePort) corev1.Service {
		s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{Type: typ, Ports: ports}}
		if ip != "" {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		}
		return s
	}
	got := loadBalancers([]corev1.Service{
		svc("web", corev1.ServiceTypeLoadBalancer, "10.0.0.192", corev1.ServicePort{Port: 80}, corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP}),
		svc("internal", corev1.ServiceTypeClusterIP, ""),
		svc("pending", corev1.ServiceTypeLoadBalancer, "", corev1.ServicePort{Port: 443}),
	})
	want := []wharfv1.LoadBalancer{
		{Service: "ns/web", Address: "10.0.0.192", Ports: []string{"80/TCP", "53/UDP"}},
		{Service: "ns/pending", Ports: []string{"443/TCP"}},
	}
	if !slices.EqualFunc(got, want, func(a, b wharfv1.LoadBalancer) bool {
		return a.Service == b.Service && a.Address == b.Address && slices.Equal(a.Ports, b.Ports)
	}) {
		t.Errorf("loadBalancers = %+v, want %+v", got, want)
	}
}

// TestLoadBalancerBlocks: clusters of a template with a pool get
// distinct blocks of it, their servers are told theirs, the cluster
// show lists their LoadBalancer services, and a cluster made when the
// pool is full gets none but is made all the same.
func TestLoadBalancerBlocks(t *testing.T) {
	e := newEnv(t, nil)
	tmpl, err := e.wc.ClusterTemplates(ns).Get(e.ctx, tmplName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := "10.199.0.0/27" // two blocks; the fake provider's hosts are on 127.77.0.0/16
	tmpl.Spec.Network.LoadBalancerCIDR = pool
	if _, err := e.wc.ClusterTemplates(ns).Update(e.ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.start()
	for _, name := range []string{"lb1", "lb2", "lb3"} {
		e.createCluster(name, 0)
	}
	blocks := map[string]string{}
	for _, name := range []string{"lb1", "lb2", "lb3"} {
		cl := e.waitStatus(name, wharfv1.StatusCreateComplete)
		blocks[name] = cl.Status.LoadBalancerCIDR
		hosts, _ := e.prov.ListHosts(e.ctx, provider.ClusterRef{Namespace: ns, Name: name, UID: string(cl.UID)})
		spec, _ := e.prov.Spec(hosts[0].Cluster, hosts[0].Name)
		i := slices.Index(spec.Args, "--lb-cidr")
		switch {
		case cl.Status.LoadBalancerCIDR == "" && i >= 0:
			t.Errorf("%s: no block, but the server has %v", name, spec.Args[i:])
		case cl.Status.LoadBalancerCIDR != "" && (i < 0 || spec.Args[i+1] != cl.Status.LoadBalancerCIDR):
			t.Errorf("%s: block %s, server args %v", name, cl.Status.LoadBalancerCIDR, spec.Args)
		}
	}
	var got []string
	for _, b := range blocks {
		if b != "" {
			got = append(got, b)
		}
	}
	slices.Sort(got)
	first := netip.MustParsePrefix(pool)
	if len(got) != 2 || got[0] == got[1] || !first.Contains(netip.MustParsePrefix(got[0]).Addr()) || !first.Contains(netip.MustParsePrefix(got[1]).Addr()) {
		t.Errorf("blocks %v; want two distinct /28 of %s and one cluster without", blocks, pool)
	}

	// The cluster's LoadBalancer services, as its status lists them.
	name := "lb1"
	if blocks[name] == "" {
		name = "lb2"
	}
	cl := e.cluster(name)
	kube := e.kube(cl)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := kube.CoreV1().Services("default").Create(e.ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl = e.waitFor(name, "its load balancer listed with an address of its block", func(cl *wharfv1.Cluster) bool {
		return len(cl.Status.LoadBalancers) == 1 && cl.Status.LoadBalancers[0].Service == "default/web" &&
			cl.Status.LoadBalancers[0].Address != "" &&
			netip.MustParsePrefix(cl.Status.LoadBalancerCIDR).Contains(netip.MustParseAddr(cl.Status.LoadBalancers[0].Address))
	})
	t.Logf("%s: %+v", name, cl.Status.LoadBalancers)

	// The cluster the full pool left without a block gets the block of a
	// deleted cluster, and its running server hands out addresses of it
	// (from the pool ConfigMap, no restart).
	var without, other string
	for n, b := range blocks {
		switch {
		case b == "":
			without = n
		case n != name:
			other = n
		}
	}
	if err := e.wc.Clusters(ns).Delete(e.ctx, other, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "cluster "+other+" gone", waitLong, func() (bool, error) {
		_, err := e.wc.Clusters(ns).Get(e.ctx, other, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	e.updateCluster(without, func(cl *wharfv1.Cluster) { // any change syncs it
		if cl.Annotations == nil {
			cl.Annotations = map[string]string{}
		}
		cl.Annotations["test/poke"] = "1"
	})
	cl = e.waitFor(without, "a block once the pool has room", func(cl *wharfv1.Cluster) bool { return cl.Status.LoadBalancerCIDR != "" })
	if b := cl.Status.LoadBalancerCIDR; b != blocks[other] {
		t.Errorf("%s got block %s, want %s, freed by %s's delete (%v)", without, b, blocks[other], other, blocks)
	}
	kube = e.kube(cl)
	if _, err := kube.CoreV1().Services("default").Create(e.ctx, svc.DeepCopy(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(without, "its load balancer given an address of the new block", func(cl *wharfv1.Cluster) bool {
		return len(cl.Status.LoadBalancers) == 1 && cl.Status.LoadBalancers[0].Address != "" &&
			netip.MustParsePrefix(cl.Status.LoadBalancerCIDR).Contains(netip.MustParseAddr(cl.Status.LoadBalancers[0].Address))
	})
	cm, err := kube.CoreV1().ConfigMaps(wire.LoadBalancerPoolNamespace).Get(e.ctx, wire.LoadBalancerPoolConfigMap, metav1.GetOptions{})
	if err != nil || cm.Data[wire.LoadBalancerPoolKey] != cl.Status.LoadBalancerCIDR {
		t.Errorf("pool ConfigMap %v, %v; want the block %s", cm, err, cl.Status.LoadBalancerCIDR)
	}
}
