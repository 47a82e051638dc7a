package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// call sends one request and returns the answer with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, method, u string, body []byte, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// errorCode is the code of a registry JSON error body.
func errorCode(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("status %d: body %q is not a registry error", a.status, a.body)
	}
	return e.Errors[0].Code
}

// resolve turns a Location header into an absolute URL.
func resolve(t *testing.T, base, loc string) *url.URL {
	t.Helper()
	b, _ := url.Parse(base)
	l, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return b.ResolveReference(l)
}

func TestChunkedUpload(t *testing.T) {
	srv, _ := serve(t, t.TempDir())
	data := bytes.Repeat([]byte("0123456789"), 3)
	a := call(t, "POST", srv.URL+"/v2/x/blobs/uploads/", nil)
	if a.status != 202 || a.header.Get("Range") != "0-0" {
		t.Fatalf("start: %d %v", a.status, a.header)
	}
	loc := resolve(t, srv.URL, a.header.Get("Location"))
	steps := []struct {
		method, contentRange string
		chunk                []byte
		wantStatus           int
		wantRange            string
	}{
		{"PATCH", "0-9", data[:10], 202, "0-9"},
		{"PATCH", "5-14", data[5:15], 416, ""}, // overlaps: refused, nothing kept
		{"GET", "", nil, 204, "0-9"},
		{"PATCH", "10-19", data[10:20], 202, "0-19"},
		{"PATCH", "", data[20:25], 202, "0-24"},  // no Content-Range: appended
		{"PATCH", "25-29", data[25:28], 400, ""}, // shorter than announced
		{"GET", "", nil, 204, "0-24"},
	}
	for i, s := range steps {
		var h []string
		if s.contentRange != "" {
			h = []string{"Content-Range", s.contentRange}
		}
		a := call(t, s.method, loc.String(), s.chunk, h...)
		if a.status != s.wantStatus || (s.wantRange != "" && a.header.Get("Range") != s.wantRange) {
			t.Fatalf("step %d (%s %s): status %d, Range %q; want %d, %q", i, s.method, s.contentRange, a.status, a.header.Get("Range"), s.wantStatus, s.wantRange)
		}
	}
	q := loc.Query()
	q.Set("digest", digestOf(data))
	loc.RawQuery = q.Encode()
	if a := call(t, "PUT", loc.String(), data[25:]); a.status != 201 || a.header.Get("Docker-Content-Digest") != digestOf(data) {
		t.Fatalf("finish: %d %v %s", a.status, a.header, a.body)
	}
	if a := call(t, "GET", srv.URL+"/v2/x/blobs/"+digestOf(data), nil); a.status != 200 || !bytes.Equal(a.body, data) {
		t.Fatalf("get: %d %q", a.status, a.body)
	}
	if a := call(t, "GET", srv.URL+"/v2/x/blobs/"+digestOf(data), nil, "Range", "bytes=5-9"); a.status != 206 || string(a.body) != "56789" {
		t.Errorf("range get: %d %q", a.status, a.body)
	}
}

func TestMonolithicUploadsAndDigests(t *testing.T) {
	srv, _ := serve(t, t.TempDir())
	blob := []byte("hello, registry")
	good, bad := digestOf(blob), digestOf([]byte("something else"))
	tests := []struct {
		name       string
		do         func() answer
		wantStatus int
		wantCode   string
		wantBlob   string // digest that must then exist
		noBlob     string // digest that must not
	}{
		{
			name:       "POST with digest",
			do:         func() answer { return call(t, "POST", srv.URL+"/v2/a/blobs/uploads/?digest="+good, blob) },
			wantStatus: 201, wantBlob: good,
		},
		{
			name:       "POST with wrong digest",
			do:         func() answer { return call(t, "POST", srv.URL+"/v2/a/blobs/uploads/?digest="+bad, blob) },
			wantStatus: 400, wantCode: codeDigestInvalid, noBlob: bad,
		},
		{
			name: "POST then PUT with body",
			do: func() answer {
				a := call(t, "POST", srv.URL+"/v2/b/blobs/uploads/", nil)
				return call(t, "PUT", resolve(t, srv.URL, a.header.Get("Location")).String()+"?digest="+good, blob)
			},
			wantStatus: 201, wantBlob: good,
		},
		{
			name: "PUT with wrong digest ends the upload",
			do: func() answer {
				a := call(t, "POST", srv.URL+"/v2/b/blobs/uploads/", nil)
				loc := resolve(t, srv.URL, a.header.Get("Location")).String()
				if a := call(t, "PUT", loc+"?digest="+bad, blob); a.status != 400 || errorCode(t, a) != codeDigestInvalid {
					t.Errorf("PUT: %d %s", a.status, a.body)
				}
				return call(t, "GET", loc, nil)
			},
			wantStatus: 404, wantCode: codeBlobUploadUnknown, noBlob: bad,
		},
		{
			name: "PUT without digest",
			do: func() answer {
				a := call(t, "POST", srv.URL+"/v2/b/blobs/uploads/", nil)
				return call(t, "PUT", resolve(t, srv.URL, a.header.Get("Location")).String(), blob)
			},
			wantStatus: 400, wantCode: codeDigestInvalid,
		},
		{
			name:       "unknown upload",
			do:         func() answer { return call(t, "PATCH", srv.URL+"/v2/b/blobs/uploads/"+newUploadID(), blob) },
			wantStatus: 404, wantCode: codeBlobUploadUnknown,
		},
		{
			name:       "mount of a known blob",
			do:         func() answer { return call(t, "POST", srv.URL+"/v2/c/blobs/uploads/?from=a&mount="+good, nil) },
			wantStatus: 201, wantBlob: good,
		},
		{
			name:       "mount of an unknown blob falls back to an upload",
			do:         func() answer { return call(t, "POST", srv.URL+"/v2/c/blobs/uploads/?from=a&mount="+bad, nil) },
			wantStatus: 202,
		},
		{
			name:       "unsupported digest algorithm",
			do:         func() answer { return call(t, "HEAD", srv.URL+"/v2/a/blobs/md5:abc", nil) },
			wantStatus: 400,
		},
		{
			name:       "bad name",
			do:         func() answer { return call(t, "GET", srv.URL+"/v2/A/tags/list", nil) },
			wantStatus: 400, wantCode: codeNameInvalid,
		},
		{
			name: "manifest with a wrong digest",
			do: func() answer {
				return call(t, "PUT", srv.URL+"/v2/a/manifests/"+bad, manifestJSON(good, len(blob)), "Content-Type", mediaOCIManifest)
			},
			wantStatus: 400, wantCode: codeDigestInvalid,
		},
		{
			name: "manifest with an unknown blob",
			do: func() answer {
				return call(t, "PUT", srv.URL+"/v2/a/manifests/v1", manifestJSON(bad, 3), "Content-Type", mediaOCIManifest)
			},
			wantStatus: 400, wantCode: codeManifestBlobUnknown,
		},
		{
			name: "manifest with known blobs",
			do: func() answer {
				return call(t, "PUT", srv.URL+"/v2/a/manifests/v1", manifestJSON(good, len(blob)), "Content-Type", mediaOCIManifest)
			},
			wantStatus: 201,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.do()
			if a.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, tt.wantStatus)
			}
			if tt.wantCode != "" && errorCode(t, a) != tt.wantCode {
				t.Errorf("code %s, want %s", errorCode(t, a), tt.wantCode)
			}
			if tt.wantBlob != "" {
				if a := call(t, "HEAD", srv.URL+"/v2/z/blobs/"+tt.wantBlob, nil); a.status != 200 {
					t.Errorf("blob %s: HEAD %d", tt.wantBlob, a.status)
				}
			}
			if tt.noBlob != "" {
				if a := call(t, "HEAD", srv.URL+"/v2/z/blobs/"+tt.noBlob, nil); a.status != 404 {
					t.Errorf("blob %s: HEAD %d, want 404", tt.noBlob, a.status)
				}
			}
		})
	}
}

// manifestJSON is an OCI manifest whose config and only layer is one blob.
func manifestJSON(digest string, size int) []byte {
	d := map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": size}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest, "config": d, "layers": []any{d}})
	return b
}
