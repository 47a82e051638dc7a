package apiserver_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/servicealloc"
	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/testserver"
)

// TestServiceAllocationReservations: values reserved in etcd by others
// (another server, or leaked) are skipped when picking and refused when
// asked for; an explicit value survives the retry of an automatic one;
// deleting a service frees its values; dry runs reserve nothing.
func TestServiceAllocationReservations(t *testing.T) {
	ctx := ctxT(t)
	etcdCtx, cancel := context.WithCancel(context.Background())
	e, err := storage.StartEmbedded(etcdCtx, slog.New(slog.NewTextHandler(io.Discard, nil)), storage.EmbeddedConfig{Dir: t.TempDir(), UnsafeNoFsync: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); cancel() })
	// A /29: .1 is the kubernetes service's, .2–.6 are for others.
	s := testserver.Start(t, func(o *controlplane.Options) {
		o.EtcdServers = []string{e.ClientURL()}
		o.ServiceCIDR = "10.96.0.0/29"
		o.DisableControllers = true
	})
	ghost := servicealloc.New(e.Client, slog.New(slog.DiscardHandler))
	owner := servicealloc.Owner{UID: "ghost-uid", Namespace: "gone", Name: "ghost"}
	for _, ip := range []string{"10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5"} {
		if _, err := ghost.Reserve(ctx, servicealloc.Key{Range: servicealloc.ClusterIPs, Value: ip}, owner); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ghost.Reserve(ctx, servicealloc.Key{Range: servicealloc.NodePorts, Value: "30100"}, owner); err != nil {
		t.Fatal(err)
	}
	svcs := s.Client.CoreV1().Services("default")
	np := func(name string, port int32) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80), NodePort: port}}},
		}
	}

	dry, err := svcs.Create(ctx, np("dry", 30200), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if dry.Spec.ClusterIP != "10.96.0.6" {
		t.Errorf("dry run got cluster IP %s, want the only free one, 10.96.0.6", dry.Spec.ClusterIP)
	}
	held := func(k servicealloc.Key) string {
		resp, err := e.Client.Get(ctx, servicealloc.Prefix+string(k.Range)+"/"+k.Value)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	ip6 := servicealloc.Key{Range: servicealloc.ClusterIPs, Value: "10.96.0.6"}
	port200 := servicealloc.Key{Range: servicealloc.NodePorts, Value: "30200"}
	if h := held(ip6) + held(port200); h != "" {
		t.Fatalf("a dry run reserved %q", h)
	}

	created, err := svcs.Create(ctx, np("a", 30200), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.ClusterIP != "10.96.0.6" || created.Spec.Ports[0].NodePort != 30200 {
		t.Fatalf("got %s and node port %d, want 10.96.0.6 and 30200", created.Spec.ClusterIP, created.Spec.Ports[0].NodePort)
	}
	if h := held(ip6); !strings.HasPrefix(h, string(created.UID)+" default/a") {
		t.Fatalf("10.96.0.6 reserved as %q, want by default/a", h)
	}

	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want string
	}{
		{"full range", np("b", 0), "failed to allocate a serviceIP: range is full"},
		{"reserved cluster IP", func() *corev1.Service { s := np("c", 0); s.Spec.ClusterIP = "10.96.0.3"; return s }(), "provided IP is already allocated"},
		{"reserved node port", func() *corev1.Service {
			s := np("d", 30100)
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Type = corev1.ServiceTypeClusterIP
			return s
		}(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svcs.Create(ctx, tc.svc, metav1.CreateOptions{})
			if tc.want == "" {
				if !apierrors.IsInvalid(err) {
					t.Fatalf("%v, want invalid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}

	// A second default/kubernetes (servers starting together) is told it
	// exists, not that the range is full.
	k := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}}
	if _, err := svcs.Create(ctx, k, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second kubernetes service: %v, want AlreadyExists", err)
	}

	// Freed on delete: the values serve a new service at once.
	if err := svcs.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if h := held(ip6) + held(port200); h != "" {
		t.Fatalf("deleted service's values still reserved: %q", h)
	}
	again, err := svcs.Create(ctx, np("e", 30200), metav1.CreateOptions{})
	if err != nil || again.Spec.ClusterIP != "10.96.0.6" {
		t.Fatalf("after delete: %v %v", err, again)
	}

	// A NodePort service turned ClusterIP gives its node port back.
	again.Spec.Type = corev1.ServiceTypeClusterIP
	again.Spec.Ports[0].NodePort = 0
	if _, err := svcs.Update(ctx, again, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if h := held(port200); h != "" {
		t.Errorf("node port of a ClusterIP service still reserved: %q", h)
	}
	if h := held(ip6); h == "" {
		t.Error("the updated service's cluster IP lost its reservation")
	}
}
