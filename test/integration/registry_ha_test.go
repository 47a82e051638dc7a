//go:build integration

package integration

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"k8s.io/client-go/rest"
)

// registryOf returns the host of p's registry and options that reach it
// as the cluster admin (the kubeconfig's CA and credentials).
func registryOf(t *testing.T, p *serverProc) (string, []remote.Option) {
	t.Helper()
	c, err := p.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := rest.TransportFor(c)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(c.Host)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host, []remote.Option{remote.WithTransport(tr), remote.WithContext(testContext(t, time.Minute))}
}

func pullImage(t *testing.T, p *serverProc, repo string, want v1.Hash) {
	t.Helper()
	host, opts := registryOf(t, p)
	ref, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pull %s through %s: %v", repo, host, err)
	}
	if err := validate.Image(img); err != nil { // reads and checks every blob
		t.Fatalf("pull %s through %s: %v", repo, host, err)
	}
	if got, _ := img.Digest(); got != want {
		t.Fatalf("pull %s through %s: digest %s, want %s", repo, host, got, want)
	}
}

// TestRegistryAcrossServers: an image pushed through one server is
// pulled through another, also after the first was killed.
func TestRegistryAcrossServers(t *testing.T) {
	servers := startServers(t, 2, sharedEtcd(t))
	a, b := servers[0], servers[1]
	host, opts := registryOf(t, a)
	digests := map[string]v1.Hash{}
	for _, repo := range []string{"wharf/first:v1", "wharf/second:v1"} {
		img, err := random.Image(3<<20, 2) // layers over several etcd chunks
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, opts...); err != nil {
			t.Fatalf("push %s through a: %v", repo, err)
		}
		digests[repo], _ = img.Digest()
	}
	pullImage(t, b, "wharf/first:v1", digests["wharf/first:v1"])
	a.kill()
	// second was never read through b: every blob comes from etcd.
	pullImage(t, b, "wharf/second:v1", digests["wharf/second:v1"])
	pullImage(t, b, "wharf/first:v1", digests["wharf/first:v1"])
	pullImage(t, b, "wharf/first@"+digests["wharf/first:v1"].String(), digests["wharf/first:v1"])
}
