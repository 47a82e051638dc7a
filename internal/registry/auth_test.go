package registry

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// adminsPushNodesPull is the control plane's rule with fixed tokens.
func adminsPushNodesPull(r *http.Request, write bool) bool {
	switch r.Header.Get("Authorization") {
	case "Bearer admin":
		return true
	case "Bearer node":
		return !write
	}
	return false
}

func TestAuthorization(t *testing.T) {
	srv, host := serve(t, t.TempDir(), WithAuthorizer(adminsPushNodesPull))
	tests := []struct {
		name, method, path, token string
		want                      int
		wantChallenge             string
	}{
		{"anonymous ping", "GET", "/v2/", "", 401, `Bearer realm="http://` + host + `/v2/token",service="wharf"`},
		{"anonymous pull", "GET", "/v2/a/tags/list", "", 401, `Bearer realm="http://` + host + `/v2/token",service="wharf",scope="repository:a:pull"`},
		{"anonymous bad path", "GET", "/v2/../../etc/passwd", "", 401, `Bearer realm="http://` + host + `/v2/token",service="wharf"`},
		{"node ping", "GET", "/v2/", "node", 200, ""},
		{"node catalog", "GET", "/v2/_catalog", "node", 200, ""},
		{"node push", "POST", "/v2/a/blobs/uploads/", "node", 401, `Bearer realm="http://` + host + `/v2/token",service="wharf",scope="repository:a:pull,push"`},
		{"admin push", "POST", "/v2/a/blobs/uploads/", "admin", 202, ""},
		{"wrong token", "GET", "/v2/", "guess", 401, `Bearer realm="http://` + host + `/v2/token",service="wharf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.token != "" {
				h = []string{"Authorization", "Bearer " + tt.token}
			}
			a := call(t, tt.method, srv.URL+tt.path, nil, h...)
			if a.status != tt.want {
				t.Fatalf("status %d, want %d", a.status, tt.want)
			}
			if got := a.header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantChallenge)
			}
			if tt.want == 401 && errorCode(t, a) != codeUnauthorized {
				t.Errorf("code %s", errorCode(t, a))
			}
		})
	}
	t.Run("ggcr with tokens", func(t *testing.T) {
		img, _ := random.Image(100, 1)
		ref, _ := name.ParseReference(host+"/a:v1", name.Insecure)
		as := func(tok string) remote.Option {
			return remote.WithAuth(authn.FromConfig(authn.AuthConfig{RegistryToken: tok}))
		}
		if err := remote.Write(ref, img, as("node")); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
			t.Errorf("node push: %v, want UNAUTHORIZED", err)
		}
		if err := remote.Write(ref, img, as("admin")); err != nil {
			t.Fatalf("admin push: %v", err)
		}
		if _, err := remote.Image(ref, as("node")); err != nil {
			t.Errorf("node pull: %v", err)
		}
		if _, err := remote.Image(ref); err == nil {
			t.Errorf("anonymous pull succeeded")
		}
	})
}

func TestCatalogTagsDelete(t *testing.T) {
	forEachStorage(t, testCatalogTagsDelete)
}

func testCatalogTagsDelete(t *testing.T, st storageMode) {
	srv, host := serve(t, t.TempDir(), st.opts...)
	img, _ := random.Image(100, 1)
	for _, r := range []string{"b/c:v1", "b/c:v2", "a:latest", "b/c:v3", "d/e/f:x"} {
		ref, _ := name.ParseReference(host+"/"+r, name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := img.Digest()
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody, wantLink string
	}{
		{"catalog", "GET", "/v2/_catalog", 200, `{"repositories":["a","b/c","d/e/f"]}`, ""},
		{"catalog page", "GET", "/v2/_catalog?n=2", 200, `{"repositories":["a","b/c"]}`, `</v2/_catalog?last=b%2Fc&n=2>; rel="next"`},
		{"catalog next page", "GET", "/v2/_catalog?n=2&last=b%2Fc", 200, `{"repositories":["d/e/f"]}`, ""},
		{"tags", "GET", "/v2/b/c/tags/list", 200, `{"name":"b/c","tags":["v1","v2","v3"]}`, ""},
		{"tags page", "GET", "/v2/b/c/tags/list?n=1&last=v1", 200, `{"name":"b/c","tags":["v2"]}`, `</v2/b/c/tags/list?last=v2&n=1>; rel="next"`},
		{"unknown repository", "GET", "/v2/nope/tags/list", 404, "", ""},
		{"delete tag", "DELETE", "/v2/b/c/manifests/v2", 202, "", ""},
		{"tags after tag deletion", "GET", "/v2/b/c/tags/list", 200, `{"name":"b/c","tags":["v1","v3"]}`, ""},
		{"delete by digest", "DELETE", "/v2/b/c/manifests/" + d.String(), 202, "", ""},
		{"tags after manifest deletion", "GET", "/v2/b/c/tags/list", 200, `{"name":"b/c","tags":[]}`, ""},
		{"deleted manifest", "HEAD", "/v2/b/c/manifests/" + d.String(), 404, "", ""},
		{"other repository keeps it", "HEAD", "/v2/a/manifests/" + d.String(), 200, "", ""},
		{"unknown method", "POST", "/v2/a/manifests/latest", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, tt.method, srv.URL+tt.path, nil)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, tt.wantStatus)
			}
			if tt.wantBody != "" {
				if diff := cmp.Diff(tt.wantBody, strings.TrimSpace(string(a.body))); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if got := a.header.Get("Link"); got != tt.wantLink {
				t.Errorf("Link %q, want %q", got, tt.wantLink)
			}
		})
	}
}
