package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/testwait"
	"wharf.dev/wharf/internal/wire"
)

func node(name, ip string, ready bool) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
	}}
}

func tlsIngress(name, host, secret string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.Now()},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: secret}},
			Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			}}}},
		},
	}
}

func tlsSecret(t *testing.T, name, host string) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}}
}

// TestController: the default class is made, each served Ingress gets
// the Ready nodes' addresses in its status (not a loopback one), and an
// Ingress whose TLS Secret is missing gets one Warning saying so (not
// repeated), then a Normal one when the Secret comes; the other Ingress
// gets none.
func TestController(t *testing.T) {
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	client := fake.NewClientset(node("a", "10.0.0.2", true), node("b", "10.0.0.1", true), node("c", "10.0.0.3", false),
		node("lo", "127.0.0.1", true), web, tlsSecret(t, "good-tls", "good.example.test"),
		tlsIngress("good", "good.example.test", "good-tls"), tlsIngress("bad", "bad.example.test", "bad-tls"))
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := &fakeapi.Recorder{}
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), client, factory, rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go c.Run(ctx, 2)

	testwait.For(t, "the default class", func() (bool, string) {
		cl, err := client.NetworkingV1().IngressClasses().Get(ctx, DefaultClass, metav1.GetOptions{})
		return err == nil && cl.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true", fmt.Sprint(err)
	})
	for _, name := range []string{"good", "bad"} {
		testwait.For(t, name+"'s status", func() (bool, string) {
			ing, err := client.NetworkingV1().Ingresses("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			var got []string
			for _, in := range ing.Status.LoadBalancer.Ingress {
				got = append(got, in.IP)
			}
			return slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}), fmt.Sprint(got)
		})
	}
	problems := func() []fakeapi.Event {
		var out []fakeapi.Event
		for _, e := range rec.Events() {
			if e.Reason == ReasonProblem || e.Reason == ReasonResolved {
				out = append(out, e)
			}
		}
		return out
	}
	testwait.For(t, "a warning on bad", func() (bool, string) { return len(problems()) > 0, "" })
	// Changes elsewhere make the controller look again: no repeat.
	client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default"}}, metav1.CreateOptions{})
	time.Sleep(500 * time.Millisecond)
	if got := problems(); len(got) != 1 || got[0].Object != "default/bad" || got[0].Type != corev1.EventTypeWarning ||
		!strings.Contains(got[0].Message, `"default/bad-tls" not found`) {
		t.Fatalf("events %+v; want one warning on default/bad naming its missing secret", got)
	}
	if _, err := client.CoreV1().Secrets("default").Create(ctx, tlsSecret(t, "bad-tls", "bad.example.test"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the problem resolved", func() (bool, string) {
		got := problems()
		return len(got) == 2 && got[1].Object == "default/bad" && got[1].Reason == ReasonResolved, fmt.Sprint(got)
	})

	// The ingress load balancer: its endpoints are the Ready nodes that
	// publish their ingress ports; once it has an address, the Ingresses
	// show it.
	for _, n := range []string{"a", "b", "c"} {
		patch := []byte(`{"metadata":{"annotations":{"` + wire.IngressPortsAnnotation + `":"80,443"}}}`)
		if _, err := client.CoreV1().Nodes().Patch(ctx, n, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, "the load balancer's endpoints", func() (bool, string) {
		s, err := client.DiscoveryV1().EndpointSlices(ServiceNamespace).Get(ctx, ServiceName+"-80-443", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, e := range s.Endpoints {
			got = append(got, *e.NodeName+"="+e.Addresses[0])
		}
		return slices.Equal(got, []string{"a=10.0.0.2", "b=10.0.0.1"}) && len(s.Ports) == 2, fmt.Sprint(got, s.Ports)
	})
	svc, err := client.CoreV1().Services(ServiceNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
	if err != nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Fatalf("load balancer service %+v, %v", svc, err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "10.0.0.100"}}
	if _, err := client.CoreV1().Services(ServiceNamespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the load balancer's address in the status", func() (bool, string) {
		ing, err := client.NetworkingV1().Ingresses("default").Get(ctx, "good", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		in := ing.Status.LoadBalancer.Ingress
		return len(in) == 1 && in[0].IP == "10.0.0.100", fmt.Sprint(in)
	})
}

// TestDefaultClassKept: a class of ours, default or not, is left alone.
func TestDefaultClassKept(t *testing.T) {
	mine := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "edge"}, Spec: networkingv1.IngressClassSpec{Controller: "wharf.dev/ingress"}}
	client := fake.NewClientset(mine)
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), client, factory, &fakeapi.Recorder{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	c.ensureDefaultClass(ctx)
	l, err := client.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 || l.Items[0].Name != "edge" {
		t.Fatalf("classes %+v, %v; want edge only", l, err)
	}
}
