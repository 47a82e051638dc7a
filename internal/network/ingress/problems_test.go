package ingress

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// feedAll gives p any kind of object, then builds.
func feedAll(p *Proxy, objs ...any) {
	for _, o := range objs {
		switch o := o.(type) {
		case *networkingv1.Ingress:
			p.UpdateIngress(o)
		case *networkingv1.IngressClass:
			p.UpdateIngressClass(o)
		case *corev1.Service:
			p.UpdateService(o)
		case *discoveryv1.EndpointSlice:
			p.UpdateEndpointSlice(o)
		case *corev1.Secret:
			p.UpdateSecret(o)
		default:
			panic("feedAll: unexpected object")
		}
	}
	p.Sync()
}

func TestProblems(t *testing.T) {
	certA := newCert(t, "a.test")
	certB := newCert(t, "b.test")
	mismatched := tlsSecret("mismatch", "1", &testCert{certPEM: certA.certPEM, keyPEM: certB.keyPEM})
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "opaque"}, Type: corev1.SecretTypeOpaque}
	garbage := tlsSecret("garbage", "1", &testCert{certPEM: []byte("not PEM"), keyPEM: certA.keyPEM})
	noKey := tlsSecret("nokey", "1", &testCert{certPEM: certA.certPEM})
	web := newService("web")
	ext := newService("ext")
	ext.Spec.Type = corev1.ServiceTypeExternalName
	toWeb := hostRule("a.test", pathTo(prefix, "/", "web", "http"))
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

	for _, tc := range []struct {
		name string
		objs []any
		want map[types.NamespacedName][]string
	}{
		{"none", []any{web, tlsSecret("a-tls", "1", certA), newIngress("i", 1, toWeb, tlsFor("a-tls", "a.test"))}, map[types.NamespacedName][]string{}},
		{"secret not found", []any{web, newIngress("i", 1, toWeb, tlsFor("hello-tls", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS secret "default/hello-tls" not found`}}},
		{"secret not TLS", []any{web, opaque, newIngress("i", 1, toWeb, tlsFor("opaque", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS secret "default/opaque" is not of type kubernetes.io/tls`}}},
		{"certificate and key mismatch", []any{web, mismatched, newIngress("i", 1, toWeb, tlsFor("mismatch", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS secret "default/mismatch": certificate and key do not match`}}},
		{"no certificate", []any{web, garbage, newIngress("i", 1, toWeb, tlsFor("garbage", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS secret "default/garbage": no PEM certificate in tls.crt`}}},
		{"no key", []any{web, noKey, newIngress("i", 1, toWeb, tlsFor("nokey", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS secret "default/nokey": no PEM private key in tls.key`}}},
		{"certificate for another host", []any{web, tlsSecret("b-tls", "1", certB), newIngress("i", 1, toWeb, tlsFor("b-tls", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS secret "default/b-tls": its certificate is not valid for host "a.test"`}}},
		{"no secret name", []any{web, newIngress("i", 1, toWeb, tlsFor("", "a.test"))},
			map[types.NamespacedName][]string{key("i"): {`TLS hosts a.test have no secretName (there is no default certificate)`}}},
		{"service not found", []any{newIngress("i", 1, hostRule("a.test", pathTo(prefix, "/", "nope", 80)))},
			map[types.NamespacedName][]string{key("i"): {`service "default/nope" not found`}}},
		{"no such port name", []any{web, newIngress("i", 1, hostRule("a.test", pathTo(prefix, "/", "web", "https")))},
			map[types.NamespacedName][]string{key("i"): {`service "default/web" has no port "https"`}}},
		{"no such port number", []any{web, newIngress("i", 1, defaultBackend("web", 8080))},
			map[types.NamespacedName][]string{key("i"): {`service "default/web" has no port 8080`}}},
		{"ExternalName", []any{ext, newIngress("i", 1, defaultBackend("ext", "http"))},
			map[types.NamespacedName][]string{key("i"): {`service "default/ext" is of type ExternalName, which is not supported`}}},
		{"relative path", []any{web, newIngress("i", 1, hostRule("a.test", pathTo(prefix, "foo", "web", 80)))},
			map[types.NamespacedName][]string{key("i"): {`path "foo" must begin with "/"`}}},
		{"dot segments", []any{web, newIngress("i", 1, hostRule("a.test", pathTo(exact, "/a/../b", "web", 80)))},
			map[types.NamespacedName][]string{key("i"): {`path "/a/../b" must not contain "//", "." or ".." elements`}}},
		{"bad wildcard", []any{web, newIngress("i", 1, hostRule("a.*.test", pathTo(prefix, "/", "web", 80)))},
			map[types.NamespacedName][]string{key("i"): {`host "a.*.test": a wildcard must be the whole first label`}}},
		{"host with port", []any{web, newIngress("i", 1, hostRule("a.test:80", pathTo(prefix, "/", "web", 80)))},
			map[types.NamespacedName][]string{key("i"): {`host "a.test:80" is not a DNS name`}}},
		{"resource backend", []any{newIngress("i", 1, func(in *networkingv1.Ingress) {
			in.Spec.DefaultBackend = &networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}}
		})}, map[types.NamespacedName][]string{key("i"): {`resource backend "Bucket/b" is not supported`}}},
		{"annotations", []any{web, newIngress("i", 1, toWeb, annotate(annotationSSLRedirect, "yes"), annotate(annotationBackendProtocol, "grpc"))},
			map[types.NamespacedName][]string{key("i"): {
				`annotation wharf.dev/backend-protocol: "grpc" is not one of http, h2c`,
				`annotation wharf.dev/ssl-redirect: "yes" is not a boolean`,
			}}},
		{"conflicts: the oldest wins", []any{web, newService("api"), tlsSecret("a-tls", "1", certA), tlsSecret("a2-tls", "1", newCert(t, "a.test")),
			newIngress("new", 2, hostRule("a.test", pathTo(prefix, "/", "api", 80), pathTo(exact, "/x", "web", 80)), defaultBackend("api", 80), tlsFor("a2-tls", "a.test")),
			newIngress("old", 1, toWeb, defaultBackend("web", 80), tlsFor("a-tls", "a.test")),
			newIngress("same", 3, toWeb), // the same route is no conflict
		}, map[types.NamespacedName][]string{key("new"): {
			`TLS host "a.test": the certificate of Ingress "default/old" (secret "default/a-tls") is used`,
			`default backend ignored: Ingress "default/old" sets one already`,
			`default backend for host "a.test" ignored: Ingress "default/old" sets one already`,
			`path "/" (Prefix) of host "a.test" is routed by Ingress "default/old" already`,
		}}},
		{"duplicate path", []any{web, newService("api"), newIngress("i", 1, hostRule("", pathTo(prefix, "/x/", "web", 80), pathTo(prefix, "/x", "api", 80)))},
			map[types.NamespacedName][]string{key("i"): {`path "/x" (Prefix) of any host appears twice; the first one is used`}}},
		{"not ours", []any{newIngress("i", 1, className("other"), hostRule("a.test", pathTo(prefix, "/", "nope", 80)))},
			map[types.NamespacedName][]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Several builds in several proxies: the order of the
			// problems must not depend on map iteration.
			for range 5 {
				p := New(Config{})
				feedAll(p, append([]any{newClass(ourClass, DefaultController, false)}, tc.objs...)...)
				if diff := cmp.Diff(tc.want, p.Problems()); diff != "" {
					t.Fatalf("problems (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// A Secret is parsed once per resourceVersion: a resync costs nothing,
// and a new version is used at the next build.
func TestSecretParsedOncePerVersion(t *testing.T) {
	p := New(Config{})
	certA, certA2 := newCert(t, "a.test"), newCert(t, "a.test")
	feedAll(p, newClass(ourClass, DefaultController, false), newService("web"),
		tlsSecret("a-tls", "1", certA), newIngress("i", 1, hostRule("a.test", pathTo(prefix, "/", "web", 80)), tlsFor("a-tls", "a.test")))
	first := p.table.Load().certs["a.test"]
	// Same version, other data: taken for a resync, not parsed.
	p.UpdateSecret(tlsSecret("a-tls", "1", certA2))
	p.Sync()
	if got := p.table.Load().certs["a.test"]; got != first {
		t.Error("a resync parsed the secret again")
	}
	p.UpdateSecret(tlsSecret("a-tls", "2", certA2))
	p.Sync()
	if got := p.table.Load().certs["a.test"]; got == first || !got.Leaf.Equal(certA2.leaf) {
		t.Error("a new version of the secret is not used")
	}
}
