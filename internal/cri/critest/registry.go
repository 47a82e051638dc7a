package critest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/network/nsrun"
)

// Alias is the registry host images are named by; containerd maps it to
// the test registry through hosts.toml, as on a real cluster.
const Alias = "registry.wharf.local"

// busyboxApplets are the commands the tests use, linked to /bin/busybox.
var busyboxApplets = []string{"cat", "echo", "env", "hostname", "httpd", "ip", "ls", "mkdir", "nc", "ps", "sh", "sleep", "wget"}

// Registry is an in-test OCI registry over TLS on loopback that demands a
// bearer token, holding a busybox image and a pause image built from the
// machine's /bin/busybox (Debian's busybox-static).
type Registry struct {
	CAFile string // PEM of the servers' (self-signed CA) certificate

	Busybox string // Alias/wharf/busybox:test: Cmd sh
	Pause   string // Alias/wharf/pause:test: sleeps until killed

	// Authorized and Rejected count requests with and without the token.
	Authorized, Rejected atomic.Int64

	handler http.Handler
	token   atomic.Pointer[string]
}

// Token is the bearer token the registry accepts.
func (r *Registry) Token() string { return *r.token.Load() }

// RotateToken makes the registry accept only a new token, and returns it.
func (r *Registry) RotateToken() string {
	tok := "test-token-" + randomID()
	r.token.Store(&tok)
	return tok
}

// ServeImages builds the images into a registry; ServeIn serves it. It
// skips the test when there is no /bin/busybox.
func ServeImages(t testing.TB) *Registry {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static): ", err)
	}
	blobs := registry.NewInMemoryBlobHandler()
	reg := &Registry{
		Busybox: Alias + "/wharf/busybox:test",
		Pause:   Alias + "/wharf/pause:test",
	}
	reg.RotateToken()
	handler := registry.New(registry.WithBlobHandler(blobs), registry.Logger(discardLogger()))

	layer, diffID := busyboxLayer(t, bb)
	push := func(repo, tag string, cfg v1.Config) {
		config, err := json.Marshal(v1.ConfigFile{
			Architecture: runtime.GOARCH,
			OS:           "linux",
			RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
			Config:       cfg,
		})
		if err != nil {
			t.Fatal(err)
		}
		manifest, err := json.Marshal(v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config:        putBlob(t, blobs, repo, config, types.OCIConfigJSON),
			Layers:        []v1.Descriptor{putBlob(t, blobs, repo, layer, types.OCILayer)},
		})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
		req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("push %s:%s: %d %s", repo, tag, rec.Code, rec.Body)
		}
	}
	push("wharf/busybox", "test", v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}})
	push("wharf/pause", "test", v1.Config{Env: []string{"PATH=/bin"}, Entrypoint: []string{"/bin/sleep", "2147483647"}})

	reg.handler = handler
	// A throwaway server for the CA certificate (every httptest TLS
	// server has the same one).
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	srv.Close()
	reg.CAFile = filepath.Join(t.TempDir(), "registry-ca.crt")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(reg.CAFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return reg
}

// ServeIn serves the registry on a loopback port inside the network
// namespace at netnsPath ("" for the caller's own) until the test ends,
// and returns the endpoint a containerd there uses.
func (r *Registry) ServeIn(t testing.TB, netnsPath string) containerd.Endpoint {
	t.Helper()
	var ln net.Listener
	listen := func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}
	var err error
	if netnsPath == "" {
		err = listen()
	} else {
		// The socket belongs to the namespace it was made in, whichever
		// thread accepts on it later.
		err = nsrun.At(netnsPath, listen)
	}
	if err != nil {
		t.Fatalf("registry listener: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer "+r.Token() {
			r.Rejected.Add(1)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`, http.StatusUnauthorized)
			return
		}
		r.Authorized.Add(1)
		r.handler.ServeHTTP(w, req)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return containerd.Endpoint{URL: srv.URL, CAFile: r.CAFile, BearerToken: r.Token()}
}

// busyboxLayer is a gzipped tar of /bin/busybox and its applet links,
// with fixed times and owners so that the digest never changes. It
// returns the layer and its diff id (digest of the uncompressed tar).
func busyboxLayer(t testing.TB, busybox []byte) ([]byte, v1.Hash) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	epoch := time.Unix(0, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format = epoch, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(busybox))}, busybox)
	for _, applet := range busyboxApplets {
		add(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID, _, err := v1.SHA256(bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes(), diffID
}

func putBlob(t testing.TB, blobs registry.BlobHandler, repo string, data []byte, mt types.MediaType) v1.Descriptor {
	h, size, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.(registry.BlobPutHandler).Put(context.Background(), repo, h, io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: h}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
