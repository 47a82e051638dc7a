package registry

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func serve(t testing.TB, dir string, opts ...Option) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(New(dir, opts...))
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushed is content a test pushed and expects to pull back.
type pushed struct {
	ref    string // without the host
	digest v1.Hash
	index  bool
}

// pushAll pushes an image by tag, one by digest and an index, the ggcr
// way: POST, one PATCH with the whole blob, PUT.
func pushAll(t *testing.T, host string) []pushed {
	t.Helper()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	other, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(512, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := other.Digest()
	d3, _ := idx.Digest()
	if err := remote.Write(mustRef(t, host+"/wharf/app:v1"), img); err != nil {
		t.Fatalf("push by tag: %v", err)
	}
	if err := remote.Write(mustRef(t, host+"/wharf/app@"+d2.String()), other); err != nil {
		t.Fatalf("push by digest: %v", err)
	}
	if err := remote.WriteIndex(mustRef(t, host+"/multi:latest"), idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	return []pushed{
		{ref: "/wharf/app:v1", digest: d1},
		{ref: "/wharf/app@" + d1.String(), digest: d1},
		{ref: "/wharf/app@" + d2.String(), digest: d2},
		{ref: "/multi:latest", digest: d3, index: true},
	}
}

// pullAll pulls everything back and checks every digest of every blob.
func pullAll(t *testing.T, host string, want []pushed) {
	t.Helper()
	for _, p := range want {
		t.Run(p.ref, func(t *testing.T) {
			ref := mustRef(t, host+p.ref)
			var got v1.Hash
			var err error
			if p.index {
				var idx v1.ImageIndex
				if idx, err = remote.Index(ref); err != nil {
					t.Fatal(err)
				}
				if err := validate.Index(idx); err != nil {
					t.Fatal(err)
				}
				got, err = idx.Digest()
			} else {
				var img v1.Image
				if img, err = remote.Image(ref); err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(img); err != nil {
					t.Fatal(err)
				}
				got, err = img.Digest()
			}
			if err != nil || got != p.digest {
				t.Errorf("digest %s, %v; want %s", got, err, p.digest)
			}
		})
	}
}

func TestPushPullAndRestart(t *testing.T) {
	forEachStorage(t, func(t *testing.T, st storageMode) {
		dir := t.TempDir()
		_, host := serve(t, dir, st.opts...)
		want := pushAll(t, host)
		t.Run("pull", func(t *testing.T) { pullAll(t, host, want) })
		// A new handler on the same storage: what a restarted server sees,
		// or with shared storage another server (its own directory).
		_, host2 := serve(t, st.next(dir), st.opts...)
		t.Run("after restart", func(t *testing.T) { pullAll(t, host2, want) })
		catalogAndTags(t, host2)
	})
}

func catalogAndTags(t *testing.T, host2 string) {
	t.Run("catalog and tags after restart", func(t *testing.T) {
		reg, _ := name.NewRegistry(host2, name.Insecure)
		repos, err := remote.Catalog(t.Context(), reg)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"multi", "wharf/app"}, repos); diff != "" {
			t.Errorf("catalog (-want +got):\n%s", diff)
		}
		tags, err := remote.List(reg.Repo("wharf", "app"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"v1"}, tags); diff != "" {
			t.Errorf("tags (-want +got):\n%s", diff)
		}
	})
}
