//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/storage"
)

// sharedEtcd starts an etcd member in the test process for several
// servers to share, and returns its client URL.
func sharedEtcd(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client, peer := "http://"+freePort(t), "http://"+freePort(t)
	e, err := storage.StartEmbedded(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), storage.EmbeddedConfig{
		Dir: t.TempDir(), Name: "shared", ClientURL: client, PeerURL: peer, InitialCluster: "shared=" + peer, UnsafeNoFsync: true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); cancel() })
	return client
}

// startServers runs n servers on one etcd, API only.
func startServers(t *testing.T, n int, etcd string, extra ...string) []*serverProc {
	var out []*serverProc
	for i := range n {
		args := append([]string{"--etcd-servers", etcd, "--disable-controllers"}, extra...)
		out = append(out, startServer(t, fmt.Sprintf("%s/s%d", t.TempDir(), i), "127.0.0.1:0", args...))
	}
	return out
}

func nodePortService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

// TestServiceAllocationAcrossServers: three API servers on one etcd hand
// out distinct cluster IPs and node ports under concurrent creates, refuse
// a value another server just gave, reuse deleted services' values, and
// report a full range as Kubernetes does.
func TestServiceAllocationAcrossServers(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	// A /24 holds 253 cluster IPs besides the kubernetes service's.
	servers := startServers(t, 3, sharedEtcd(t), "--service-cidr", "10.96.0.0/24")
	clients := make([]kubernetes.Interface, len(servers))
	for i, s := range servers {
		clients[i] = s.client()
	}

	const total = 200
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 12 {
				c := clients[i%len(clients)]
				if _, err := c.CoreV1().Services("default").Create(ctx, nodePortService(fmt.Sprintf("np-%03d", i)), metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("service %d through server %d: %w", i, i%len(clients), err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	list, err := clients[0].CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for _, s := range list.Items {
		if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			if other, dup := ips[s.Spec.ClusterIP]; dup {
				t.Errorf("cluster IP %s given to %s and %s", s.Spec.ClusterIP, other, s.Name)
			}
			ips[s.Spec.ClusterIP] = s.Name
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			if other, dup := ports[p.NodePort]; dup {
				t.Errorf("node port %d given to %s and %s", p.NodePort, other, s.Name)
			}
			ports[p.NodePort] = s.Name
		}
	}
	if len(ports) != total {
		t.Errorf("%d distinct node ports, want %d", len(ports), total)
	}

	// The same explicit values asked of two servers at once: one wins.
	for round := range 10 {
		var mu sync.Mutex
		var won []string
		var lost []error
		var rw sync.WaitGroup
		for i := range 2 {
			rw.Add(1)
			go func() {
				defer rw.Done()
				svc := nodePortService(fmt.Sprintf("race-%d-%d", round, i))
				svc.Spec.ClusterIP = fmt.Sprintf("10.96.0.%d", 230+round)
				_, err := clients[i].CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won = append(won, svc.Name)
				} else {
					lost = append(lost, err)
				}
			}()
		}
		rw.Wait()
		// An address the 200 services took is refused by both.
		if taken := ips[fmt.Sprintf("10.96.0.%d", 230+round)]; taken != "" {
			if len(won) != 0 {
				t.Errorf("round %d: %v created with %s's address", round, won, taken)
			}
			continue
		}
		if len(won) != 1 || len(lost) != 1 || !apierrors.IsInvalid(lost[0]) || !strings.Contains(lost[0].Error(), "provided IP is already allocated") {
			t.Errorf("round %d: created %v, errors %v; want one created and one \"provided IP is already allocated\"", round, won, lost)
		}
	}

	// Deleted services' values can be asked for again, through another server.
	for i := range 20 {
		name := fmt.Sprintf("np-%03d", i)
		old, err := clients[0].CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := clients[1].CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		again := nodePortService("again-" + name)
		again.Spec.ClusterIP = old.Spec.ClusterIP
		again.Spec.Ports[0].NodePort = old.Spec.Ports[0].NodePort
		if _, err := clients[2].CoreV1().Services("default").Create(ctx, again, metav1.CreateOptions{}); err != nil {
			t.Fatalf("reusing %s's cluster IP %s and node port %d: %v", name, old.Spec.ClusterIP, old.Spec.Ports[0].NodePort, err)
		}
	}
	// A node port a live service holds is refused through every server.
	held, err := clients[0].CoreV1().Services("default").Get(ctx, "np-100", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		svc := nodePortService(fmt.Sprintf("taken-port-%d", i))
		svc.Spec.Ports[0].NodePort = held.Spec.Ports[0].NodePort
		_, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "provided port is already allocated") {
			t.Errorf("node port %d of np-100 through server %d: %v, want \"provided port is already allocated\"", held.Spec.Ports[0].NodePort, i, err)
		}
	}

	// Fill the range: the next service gets Kubernetes' error.
	var full error
	for i := 0; i < 300 && full == nil; i++ {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill-%03d", i)},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}
		_, full = clients[i%len(clients)].CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	}
	if full == nil || !apierrors.IsInternalError(full) || !strings.Contains(full.Error(), "failed to allocate a serviceIP: range is full") {
		t.Fatalf("filling 10.96.0.0/24: %v, want an internal error \"failed to allocate a serviceIP: range is full\"", full)
	}
}

// TestServersStartTogether: servers starting at once on one empty etcd
// all bootstrap (each creates the kubernetes service and its address;
// the losers are told it exists) and all serve.
func TestServersStartTogether(t *testing.T) {
	etcd := sharedEtcd(t)
	t.Run("group", func(t *testing.T) {
		for i := range 3 {
			t.Run(fmt.Sprint("server-", i), func(t *testing.T) {
				t.Parallel()
				s := startServer(t, t.TempDir()+"/s", "127.0.0.1:0", "--etcd-servers", etcd, "--disable-controllers")
				ctx := testContext(t, time.Minute)
				svc, err := s.client().CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
				if err != nil || svc.Spec.ClusterIP != "10.96.0.1" {
					t.Fatalf("kubernetes service: %v %v", err, svc)
				}
			})
		}
	})
}
