//go:build integration

package integration

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/storage"
)

// TestExternalEtcd runs a server on an etcd it does not own
// (--etcd-servers); the data outlives the server.
func TestExternalEtcd(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	etcdCtx, stopEtcd := context.WithCancel(context.Background())
	defer stopEtcd()
	client, peer := "http://"+freePort(t), "http://"+freePort(t)
	e, err := storage.StartEmbedded(etcdCtx, slog.New(slog.NewTextHandler(io.Discard, nil)), storage.EmbeddedConfig{
		Dir: t.TempDir(), Name: "external", ClientURL: client, PeerURL: peer, InitialCluster: "external=" + peer,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	first := startServer(t, t.TempDir()+"/a", "127.0.0.1:0", "--etcd-servers", client)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}
	if _, err := first.client().CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first.kill()

	// A new server with a new data dir: everything it serves comes from etcd.
	second := startServer(t, t.TempDir()+"/b", "127.0.0.1:0", "--etcd-servers", client)
	got, err := second.client().CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("config map through the second server: %v %+v", err, got)
	}
}
