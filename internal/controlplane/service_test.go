package controlplane

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/wire"
)

// TestServiceMode: a service serves wharf.dev/v1, its certificate covers
// the provider's service address, and its cluster controller runs with
// what it needs.
func TestServiceMode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	envs := make(chan wire.ServiceEnv, 1)
	s, err := Start(ctx, Options{DataDir: dir, Listen: "127.0.0.1:0", UnsafeNoFsync: true, Logger: slog.New(slog.DiscardHandler),
		Service: true, ProviderNetwork: "10.99.0.0/24",
		ServiceController: func(ctx context.Context, env wire.ServiceEnv) error {
			envs <- env
			<-ctx.Done()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	env := <-envs
	port := s.listener.Addr().(*net.TCPAddr).Port
	want := wire.ServiceEnv{
		URL: s.URL, CACertPEM: s.ca.CertPEM, ProviderNetwork: "10.99.0.0/24", ServiceAddress: "10.99.0.1",
		RegistryURL: "https://10.99.0.1:" + strconv.Itoa(port), HostsDir: filepath.Join(dir, "hosts"), DataDir: dir,
	}
	if diff := cmp.Diff(want, env, cmpopts.IgnoreFields(wire.ServiceEnv{}, "Logger", "Loopback")); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if env.Loopback == nil || env.Loopback.Host == "" {
		t.Errorf("no loopback config")
	}

	u, _ := url.Parse(s.URL)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var ips []string
	for _, ip := range conn.ConnectionState().PeerCertificates[0].IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Contains(ips, "10.99.0.1") {
		t.Errorf("serving certificate covers %v, not the service address", ips)
	}

	kube, err := kubernetes.NewForConfig(s.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	list, err := kube.Discovery().ServerResourcesForGroupVersion("wharf.dev/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.APIResources {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"clustertemplates", "clusters", "clusters/status", "nodegroups", "nodegroups/status", "clusterbackups", "clusterbackups/status"}, names); diff != "" {
		t.Errorf("wharf.dev/v1 resources (-want +got):\n%s", diff)
	}
}

func TestServiceAddress(t *testing.T) {
	for in, want := range map[string]string{"10.123.0.0/24": "10.123.0.1", "10.123.0.77/24": "10.123.0.1", "192.168.8.0/30": "192.168.8.1", "10.0.0.0/31": "", "fd00::/64": "", "x": ""} {
		got, err := ServiceAddress(in)
		if (err != nil) != (want == "") || (err == nil && got.String() != want) {
			t.Errorf("ServiceAddress(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
}
