package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	clientv3 "go.etcd.io/etcd/client/v3"

	"wharf.dev/wharf/internal/storage"
)

// storageMode is one way of storing a registry: the tests that take one
// run against each (forEachStorage).
type storageMode struct {
	opts []Option
	// next is the directory a second registry seeing the same content
	// uses: the same one on disk alone, a fresh one with shared storage.
	next func(dir string) string
}

func forEachStorage(t *testing.T, f func(t *testing.T, st storageMode)) {
	t.Run("disk", func(t *testing.T) {
		f(t, storageMode{next: func(dir string) string { return dir }})
	})
	t.Run("etcd", func(t *testing.T) {
		store := NewEtcdStore(testEtcd(t), DefaultEtcdPrefix)
		f(t, storageMode{opts: []Option{WithShared(store)}, next: func(string) string { return t.TempDir() }})
	})
}

func testEtcd(t testing.TB) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := storage.StartEmbedded(ctx, slog.New(slog.DiscardHandler), storage.EmbeddedConfig{Dir: t.TempDir(), UnsafeNoFsync: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); cancel() })
	return e.Client
}

// TestSharedSurvivesServer: an image pushed through one server, with
// layers over several chunks, is pulled through another after the first
// and its directory are gone; a corrupt chunk is refused, not served.
func TestSharedSurvivesServer(t *testing.T) {
	client := testEtcd(t)
	store := NewEtcdStore(client, DefaultEtcdPrefix)
	dirA := t.TempDir()
	srvA, hostA := serve(t, dirA, WithShared(store))
	img, err := random.Image(ChunkSize*5/2, 2) // 2.5 chunks a layer
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, hostA+"/big:v1"), img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	srvA.Close()
	if err := os.RemoveAll(dirA); err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	srvB, hostB := serve(t, dirB, WithShared(store))
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	ls, _ := layers[0].Size()
	head := call(t, "HEAD", srvB.URL+"/v2/big/blobs/"+ld.String(), nil)
	if head.status != 200 || head.header.Get("Content-Length") != fmt.Sprint(ls) || head.header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("HEAD of a layer through b: %d %v, want 200, size %d", head.status, head.header, ls)
	}
	if _, err := os.Stat(New(dirB).blobPath(ld.String())); err == nil {
		t.Error("a HEAD copied the blob to b's directory")
	}
	if a := call(t, "HEAD", srvB.URL+"/v2/big/blobs/sha256:"+strings.Repeat("0", 64), nil); a.status != 404 {
		t.Errorf("HEAD of an unknown blob: %d, want 404", a.status)
	}
	pullAll(t, hostB, []pushed{{ref: "/big:v1", digest: d}, {ref: "/big@" + d.String(), digest: d}})

	// Corrupt the first chunk of a layer: a server without a copy refuses it.
	key := store.chunkKey(ld.Hex, 0)
	resp, err := client.Get(t.Context(), key)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("chunk %s: %v", key, err)
	}
	bad := bytes.Clone(resp.Kvs[0].Value)
	bad[0] ^= 0xff
	if _, err := client.Put(t.Context(), key, string(bad)); err != nil {
		t.Fatal(err)
	}
	dirC := t.TempDir()
	srvC, _ := serve(t, dirC, WithShared(store))
	a := call(t, "GET", srvC.URL+"/v2/big/blobs/"+ld.String(), nil)
	if a.status != 500 {
		t.Errorf("corrupt blob: status %d %q, want 500", a.status, a.body)
	}
	if _, err := os.Stat(New(dirC).blobPath(ld.String())); err == nil {
		t.Error("the corrupt blob was kept in the server's directory")
	}
}

// TestEtcdStoreBlobs: sizes around chunk boundaries round-trip.
func TestEtcdStoreBlobs(t *testing.T) {
	store := NewEtcdStore(testEtcd(t), "/test/")
	ctx := t.Context()
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		digest := digestOf(data)[len("sha256:"):]
		if err := store.PutBlob(ctx, digest, bytes.NewReader(data), int64(size)); err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		got, ok, err := store.BlobSize(ctx, digest)
		if err != nil || !ok || got != int64(size) {
			t.Fatalf("size of %d bytes: %d %v %v", size, got, ok, err)
		}
		var buf bytes.Buffer
		if ok, err := store.GetBlob(ctx, digest, &buf); err != nil || !ok || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("get %d bytes: %d bytes back, %v %v", size, buf.Len(), ok, err)
		}
	}
	if ok, err := store.GetBlob(ctx, "0000", io.Discard); ok || err != nil {
		t.Errorf("missing blob: %v %v, want not found", ok, err)
	}
	if err := store.PutBlob(ctx, "short", strings.NewReader("abc"), 4); err == nil {
		t.Error("a blob shorter than its size was stored")
	}
}

// TestImportLocal: a registry that kept everything on disk, restarted
// with shared storage, serves its images through another server too.
func TestImportLocal(t *testing.T) {
	dir := t.TempDir()
	_, host := serve(t, dir)
	want := pushAll(t, host)
	store := NewEtcdStore(testEtcd(t), DefaultEtcdPrefix)
	reg := New(dir, WithShared(store))
	blobs, metas, err := reg.ImportLocal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if blobs == 0 || metas == 0 {
		t.Fatalf("imported %d blobs and %d tags or revisions, want some of each", blobs, metas)
	}
	if b, m, err := reg.ImportLocal(t.Context()); b != 0 || m != 0 || err != nil {
		t.Errorf("second import: %d, %d, %v; want nothing done", b, m, err)
	}
	_, other := serve(t, t.TempDir(), WithShared(store))
	pullAll(t, other, want)
	catalogAndTags(t, other)
}
