package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParsePath(t *testing.T) {
	tests := []struct {
		path     string
		want     route
		wantCode string // error code, if any
	}{
		{"/v2/", route{kind: routeBase}, ""},
		{"/v2/_catalog", route{kind: routeCatalog}, ""},
		{"/v2/wharf/pause/manifests/v1", route{kind: routeManifest, name: "wharf/pause", ref: "v1"}, ""},
		{"/v2/a/manifests/" + testDigest, route{kind: routeManifest, name: "a", ref: testDigest}, ""},
		{"/v2/a/b/c/blobs/" + testDigest, route{kind: routeBlob, name: "a/b/c", ref: testDigest}, ""},
		{"/v2/a/blobs/uploads/", route{kind: routeUpload, name: "a"}, ""},
		{"/v2/a/blobs/uploads", route{kind: routeUpload, name: "a"}, ""},
		{"/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef", route{kind: routeUpload, name: "a", id: "0123456789abcdef0123456789abcdef"}, ""},
		{"/v2/a/tags/list", route{kind: routeTags, name: "a"}, ""},
		// Names may hold the fixed words; the last segments decide.
		{"/v2/blobs/manifests/tags/list", route{kind: routeTags, name: "blobs/manifests"}, ""},
		{"/v2/x/blobs/uploads/manifests/v1", route{kind: routeManifest, name: "x/blobs/uploads", ref: "v1"}, ""},
		{"/v2/x/blobs/blobs/uploads/", route{kind: routeUpload, name: "x/blobs"}, ""},
		{"/v2/my-app_1.0/manifests/latest", route{kind: routeManifest, name: "my-app_1.0", ref: "latest"}, ""},
		{"/v2/../etc/manifests/v1", route{}, codeNameInvalid},
		{"/v2//a/manifests/v1", route{}, codeNameInvalid},
		{"/v2/A/manifests/v1", route{}, codeNameInvalid},
		{"/v2/manifests/v1", route{}, codeNameInvalid},
		{"/v2/a/manifests/.hidden", route{}, codeTagInvalid},
		{"/v2/a/manifests/sha512:abcd", route{}, codeDigestInvalid},
		{"/v2/a/blobs/latest", route{}, codeDigestInvalid},
		{"/v2/a/blobs/uploads/../../x", route{}, codeUnsupported},
		{"/v2/a/blobs/uploads/nothex", route{}, codeBlobUploadUnknown},
		{"/v2/a", route{}, codeUnsupported},
		{"/v3/", route{}, codeUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := parsePath(tt.path)
			code := ""
			var e *apiError
			if errors.As(err, &e) {
				code = e.code
			} else if err != nil {
				t.Fatalf("error %v is not an *apiError", err)
			}
			if code != tt.wantCode {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(route{})); diff != "" {
				t.Errorf("route (-want +got):\n%s", diff)
			}
		})
	}
}

// unparse is the path of a route: parsePath's inverse.
func unparse(r route) string {
	switch r.kind {
	case routeBase:
		return "/v2/"
	case routeCatalog:
		return "/v2/_catalog"
	case routeTags:
		return "/v2/" + r.name + "/tags/list"
	case routeManifest:
		return "/v2/" + r.name + "/manifests/" + r.ref
	case routeBlob:
		return "/v2/" + r.name + "/blobs/" + r.ref
	default:
		return "/v2/" + r.name + "/blobs/uploads/" + r.id
	}
}

// FuzzParsePath: any accepted path names a safe repository, a valid
// reference, and nothing but itself.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{"/v2/", "/v2/_catalog", "/v2/a/b/manifests/v1", "/v2/a/blobs/" + testDigest,
		"/v2/a/blobs/uploads/", "/v2/a/tags/list", "/v2/../x/manifests/v1", "/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := parsePath(p)
		if err != nil {
			var e *apiError
			if !errors.As(err, &e) || e.status < 400 {
				t.Fatalf("%q: error %v is not a client error", p, err)
			}
			return
		}
		if r.kind != routeBase && r.kind != routeCatalog {
			if !nameRE.MatchString(r.name) || strings.Contains(r.name, "..") || strings.HasPrefix(r.name, "/") {
				t.Fatalf("%q: unsafe name %q", p, r.name)
			}
		}
		if (r.kind == routeBlob || r.kind == routeManifest && isDigest(r.ref)) && !digestRE.MatchString(r.ref) {
			t.Fatalf("%q: bad digest %q", p, r.ref)
		}
		if strings.Contains(r.ref+r.id, "/") || r.ref == ".." || r.id == ".." {
			t.Fatalf("%q: unsafe reference %q or id %q", p, r.ref, r.id)
		}
		back := unparse(r)
		if r.kind == routeUpload && r.id == "" {
			back = strings.TrimSuffix(back, "/")
			p = strings.TrimSuffix(p, "/")
		}
		if back != p {
			t.Fatalf("%q parsed as %+v, which is %q", p, r, back)
		}
	})
}

// FuzzParseContentRange: an accepted range is never empty or negative.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-9", "bytes=10-19", "5-4", "-1-3", "9223372036854775807-9223372036854775807", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, length, err := parseContentRange(s)
		if err == nil && (start < 0 || length < 1) {
			t.Fatalf("%q: start %d length %d", s, start, length)
		}
	})
}

// FuzzParseManifest: parsing never panics, and an accepted manifest
// refers only to well-formed sha256 digests.
func FuzzParseManifest(f *testing.F) {
	f.Add(mediaOCIManifest, string(manifestJSON(testDigest, 3)))
	f.Add("", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"`+testDigest+`","size":1}]}`)
	f.Add(mediaDockerManifest, `{"schemaVersion":2,"config":{"digest":"sha256:x"}}`)
	f.Add("application/json", `{"schemaVersion":1}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		mt, m, err := parseManifest(contentType, []byte(body))
		if err != nil {
			return
		}
		if mt == "" {
			t.Fatalf("accepted without a media type")
		}
		for _, d := range m.refs() {
			if !digestRE.MatchString(d.Digest) || d.Size < 0 {
				t.Fatalf("accepted descriptor %+v", d)
			}
		}
	})
}
