package coe

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/fake"
	"wharf.dev/wharf/internal/testserver"
)

// The tests' world: the service is a real control plane in service mode
// (internal/testserver), the provider is the fake one, and what runs on
// its hosts is hosts_test.go's: real control planes and simulated agents.

const (
	ns       = "default"
	tmplName = "local"
	// waitLong bounds every wait: generous, since it never decides a
	// pass, it only turns a hang into a failure.
	waitLong = 90 * time.Second
)

var (
	networks atomic.Int32 // each test's hosts get 127.77.<n>.0/24
	portOnce sync.Once
	apiPort  int // one free port for every cluster API in this process
)

func freePort(t testing.TB) int {
	portOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		apiPort = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	})
	return apiPort
}

type testEnv struct {
	t    testing.TB
	ctx  context.Context
	svc  *testserver.Server
	wc   *wharf.Client
	prov *fake.Provider
	rt   *hostRuntime
	stop func() // stops the running controller
}

// newEnv starts a service and a template "local" of the fake provider
// (labels become the template's).
func newEnv(t testing.TB, labels map[string]string) *testEnv {
	if t, ok := t.(*testing.T); ok {
		t.Parallel()
	}
	svc := testserver.Start(t, testserver.Service)
	wc, err := wharf.NewForConfig(svc.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	n := networks.Add(1)
	rt := &hostRuntime{log: testserver.Logger(t), broken: map[string]bool{}, grace: 2 * time.Second}
	e := &testEnv{t: t, ctx: context.Background(), svc: svc, wc: wc, rt: rt,
		prov: fake.New(
			fake.WithName("local"),
			fake.WithNetwork(netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 77, byte(n), 0}), 24)),
			fake.WithStateRoot(t.TempDir()),
			fake.WithRuntime(rt)),
	}
	t.Cleanup(func() {
		for _, h := range e.prov.All() {
			e.prov.DeleteHost(context.Background(), h.Cluster, h.Name)
		}
	})
	_, err = wc.ClusterTemplates(ns).Create(e.ctx, &wharfv1.ClusterTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: tmplName, Namespace: ns},
		Spec:       wharfv1.ClusterTemplateSpec{COE: "kubernetes", Provider: "local", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs a controller (on a new provider over the same hosts, as a
// restarted service would have) until the test ends or e.stop.
func (e *testEnv) start(tweak ...func(*Config)) {
	cfg := Config{
		Kube:          e.svc.Client,
		Wharf:         e.wc,
		Providers:     map[string]provider.Provider{"local": e.prov.Reopen()},
		RegistryURL:   "https://" + net.JoinHostPort(e.prov.ServiceAddress(), "7443"),
		RegistryCA:    e.svc.Loopback.CAData,
		Logger:        testserver.Logger(e.t).With("component", "coe"),
		APIPort:       freePort(e.t),
		HealthPeriod:  200 * time.Millisecond,
		AutoHealAfter: time.Second,
		DrainTimeout:  10 * time.Second,
		UpdateTimeout: time.Minute,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := New(cfg).Run(ctx); err != nil {
			e.t.Errorf("controller: %v", err)
		}
	}()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(e.stop)
}

func (e *testEnv) createCluster(name string, nodes int32, tweak ...func(*wharfv1.Cluster)) {
	e.t.Helper()
	cl := &wharfv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       wharfv1.ClusterSpec{Template: tmplName, MasterCount: 1, NodeCount: nodes},
	}
	for _, f := range tweak {
		f(cl)
	}
	if _, err := e.wc.Clusters(ns).Create(e.ctx, cl, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create cluster %s: %v", name, err)
	}
}

// updateCluster changes a cluster's spec as a client does: read, change,
// write, again on a conflict (the controller writes its status at any
// time: health, load balancers).
func (e *testEnv) updateCluster(name string, change func(*wharfv1.Cluster)) *wharfv1.Cluster {
	e.t.Helper()
	var out *wharfv1.Cluster
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cl, err := e.wc.Clusters(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(cl)
		out, err = e.wc.Clusters(ns).Update(e.ctx, cl, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatalf("update cluster %s: %v", name, err)
	}
	return out
}

func (e *testEnv) cluster(name string) *wharfv1.Cluster {
	e.t.Helper()
	cl, err := e.wc.Clusters(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get cluster %s: %v", name, err)
	}
	return cl
}

// waitFor polls the cluster until cond holds.
func (e *testEnv) waitFor(name, what string, cond func(*wharfv1.Cluster) bool) *wharfv1.Cluster {
	e.t.Helper()
	var cl *wharfv1.Cluster
	testserver.WaitFor(e.t, "cluster "+name+": "+what, waitLong, func() (bool, error) {
		var err error
		cl, err = e.wc.Clusters(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return cond(cl), nil
	})
	return cl
}

// waitStatus waits for status; waiting for X_COMPLETE fails at once on X_FAILED.
func (e *testEnv) waitStatus(name, status string) *wharfv1.Cluster {
	e.t.Helper()
	failed := strings.TrimSuffix(status, "_COMPLETE") + "_FAILED"
	cl := e.waitFor(name, status, func(cl *wharfv1.Cluster) bool {
		return cl.Status.Status == status || (strings.HasSuffix(status, "_COMPLETE") && cl.Status.Status == failed)
	})
	if cl.Status.Status != status {
		e.t.Fatalf("cluster %s is %s (%s), want %s; faults %v", name, cl.Status.Status, cl.Status.StatusReason, status, cl.Status.Faults)
	}
	return cl
}

// kube is a client of a cluster's API, as its admin.
func (e *testEnv) kube(cl *wharfv1.Cluster) kubernetes.Interface {
	e.t.Helper()
	s, err := e.svc.Client.CoreV1().Secrets(ns).Get(e.ctx, credentialsName(cl.Name), metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	k, err := kubernetes.NewForConfig(&rest.Config{Host: cl.Status.APIAddress, BearerToken: string(s.Data[keyAdminToken]),
		TLSClientConfig: rest.TLSClientConfig{CAData: s.Data[keyCACert]}})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *testEnv) group(name string) *wharfv1.NodeGroup {
	e.t.Helper()
	g, err := e.wc.NodeGroups(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("node group %s: %v", name, err)
	}
	return g
}

func (e *testEnv) createGroup(name, cluster string, count int32, labels map[string]string, taints []corev1.Taint) {
	e.t.Helper()
	_, err := e.wc.NodeGroups(ns).Create(e.ctx, &wharfv1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: wharfv1.NodeGroupSpec{Cluster: cluster, Role: wharfv1.RoleWorker, NodeCount: count,
			Labels: labels, Taints: taints},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create node group %s: %v", name, err)
	}
}
