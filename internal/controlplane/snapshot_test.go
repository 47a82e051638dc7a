package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/wire"
)

// startTestServer starts a server stopped at the end of the test or by
// the stop function returned, whichever comes first.
func startTestServer(t *testing.T, o Options) (*Server, func()) {
	t.Helper()
	o.Listen, o.UnsafeNoFsync, o.DisableControllers = "127.0.0.1:0", true, true
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(s.Stop)
	t.Cleanup(stop)
	return s, stop
}

// getSnapshot GETs wire.SnapshotPath with cfg's credentials.
func getSnapshot(t *testing.T, cfg *rest.Config) *http.Response {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(cfg.Host + wire.SnapshotPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSnapshotEndpointAndRestoreAtStart(t *testing.T) {
	ctx := context.Background()
	old, _ := startTestServer(t, Options{DataDir: t.TempDir()})
	kube := kubernetes.NewForConfigOrDie(old.Loopback)
	if _, err := kube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old-node"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "old-node"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.join(ctx, wire.JoinRequest{NodeName: "old-node"}); err != nil {
		t.Fatal(err)
	}

	// Only system:masters may read a snapshot: the join token may not.
	join, err := wire.ParseJoinToken(old.JoinToken)
	if err != nil {
		t.Fatal(err)
	}
	bootstrap := rest.CopyConfig(old.Loopback)
	bootstrap.BearerToken = join.Secret
	if resp := getSnapshot(t, bootstrap); resp.StatusCode != http.StatusForbidden {
		t.Errorf("snapshot as the join token: %s, want 403", resp.Status)
	}

	resp := getSnapshot(t, old.Loopback)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("snapshot: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if got := resp.Header.Get(wire.SnapshotSHA256Header); got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 header %q, body's %x", got, sum)
	}
	if rev, _ := strconv.ParseInt(resp.Header.Get(wire.SnapshotRevisionHeader), 10, 64); rev <= 0 {
		t.Errorf("revision header %q", resp.Header.Get(wire.SnapshotRevisionHeader))
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("bad snapshot leaves the data dir empty", func(t *testing.T) {
		for name, data := range map[string][]byte{"truncated": body[:len(body)-100], "corrupted": flipByte(body, len(body)/2)} {
			bad := filepath.Join(t.TempDir(), name+".db")
			if err := os.WriteFile(bad, data, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "data")
			_, err := Start(ctx, Options{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), RestoreFrom: bad})
			if err == nil || !strings.Contains(err.Error(), "bad etcd snapshot") {
				t.Errorf("%s: start: %v, want a bad snapshot error", name, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("%s: data dir holds %v", name, entries)
			}
		}
		_, err := Start(ctx, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), RestoreFrom: file, RestoreSHA256: strings.Repeat("0", 64)})
		if err == nil || !strings.Contains(err.Error(), "sha256 is") {
			t.Errorf("start with the wrong checksum: %v", err)
		}
	})

	dir := t.TempDir()
	restored, stop := startTestServer(t, Options{DataDir: dir, RestoreFrom: file, RestoreSHA256: resp.Header.Get(wire.SnapshotSHA256Header)})
	rkube := kubernetes.NewForConfigOrDie(restored.Loopback)
	cm, err := rkube.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || cm.Data["k"] != "v" {
		t.Fatalf("configmap after restore: %v %v", cm, err)
	}
	if _, err := rkube.CoreV1().Nodes().Get(ctx, "old-node", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old node after restore: %v, want not found", err)
	}
	if _, err := rkube.CoordinationV1().Leases("kube-node-lease").Get(ctx, "old-node", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old node lease after restore: %v, want not found", err)
	}
	if _, err := rkube.CoreV1().Secrets(wire.NodeTokenNamespace).Get(ctx, wire.NodeTokenSecretName("old-node"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old node token after restore: %v, want not found", err)
	}
	if _, err := os.Stat(filepath.Join(dir, restoredMarker)); !os.IsNotExist(err) {
		t.Errorf("restore marker left: %v", err)
	}

	// A restart with the same flags keeps the data written since.
	if _, err := rkube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()
	again, _ := startTestServer(t, Options{DataDir: dir, RestoreFrom: file})
	if _, err := kubernetes.NewForConfigOrDie(again.Loopback).CoreV1().ConfigMaps("default").Get(ctx, "after", metav1.GetOptions{}); err != nil {
		t.Errorf("restart after restore lost a write: %v", err)
	}
}

func flipByte(b []byte, off int) []byte {
	c := append([]byte(nil), b...)
	c[off] ^= 1
	return c
}
