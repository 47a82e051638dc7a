package clusterservice

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/controlplane"
)

// fakeState makes a state dir as a service leaves it: a server's data dir
// holding the ConfigMap "kept", and the service's own files.
func fakeState(t *testing.T) (Options, func() *controlplane.Server) {
	t.Helper()
	o, err := Options{StateDir: filepath.Join(t.TempDir(), "s")}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	start := func() *controlplane.Server {
		s, err := controlplane.Start(context.Background(), controlplane.Options{DataDir: o.serverDir(), Listen: "127.0.0.1:0",
			DisableControllers: true, UnsafeNoFsync: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	_, err = kubernetes.NewForConfigOrDie(s.Loopback).CoreV1().ConfigMaps("default").Create(context.Background(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(s.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	for name, data := range map[string]string{
		"service.json": `{"listen":"0.0.0.0:7443"}`, "network.json": `{}`, "service.log": "log", "admin.kubeconfig": string(kubeconfig),
		"hosts/abcd/host.json": `{}`, "hosts/abcd/containerd/state": "x", "backups/default/demo/demo-1.db": "snapshot",
		"ssh/machines.json": "{}",
	} {
		p := filepath.Join(o.StateDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return o, start
}

func TestServiceBackupRestore(t *testing.T) {
	ctx := context.Background()
	for _, online := range []bool{false, true} {
		t.Run("online="+strconv.FormatBool(online), func(t *testing.T) {
			o, start := fakeState(t)
			if online {
				s := start()
				defer s.Stop()
				// The kubeconfig the CLI uses, and this process as the service.
				data, _ := os.ReadFile(s.AdminKubeconfig)
				os.WriteFile(o.Kubeconfig(), data, 0o600)
				os.WriteFile(o.Proc().PidFile, []byte(strconv.Itoa(os.Getpid())), 0o600)
			}
			file := filepath.Join(t.TempDir(), "service.tgz")
			info, err := Backup(ctx, o, file)
			if err != nil {
				t.Fatal(err)
			}
			if info.Online != online || info.EtcdRevision <= 0 || info.Files["server/tokens.json"] == "" || info.Files["hosts/abcd/host.json"] == "" ||
				info.Files["backups/default/demo/demo-1.db"] == "" || info.Files["hosts/abcd/containerd/state"] != "" || info.Files["service.log"] != "" {
				t.Errorf("backup: online %v revision %d files %v", info.Online, info.EtcdRevision, info.Files)
			}
			if sum, _ := os.ReadFile(file + ".sha256"); !strings.HasPrefix(string(sum), info.SHA256+"  service.tgz") {
				t.Errorf("checksum file %q", sum)
			}

			target := Options{StateDir: filepath.Join(t.TempDir(), "new")}
			if _, err := Restore(ctx, target, file, ""); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"service.json", "network.json", "hosts/abcd/host.json", "backups/default/demo/demo-1.db", "server/pki/ca.crt", "ssh/machines.json"} {
				if _, err := os.Stat(filepath.Join(target.StateDir, f)); err != nil {
					t.Errorf("restored state lacks %s: %v", f, err)
				}
			}
			for _, f := range []string{"service.log", "hosts/abcd/containerd", "etcd.db", manifestName} {
				if _, err := os.Stat(filepath.Join(target.StateDir, f)); err == nil {
					t.Errorf("restored state has %s", f)
				}
			}
			// The restored server holds the objects and the old CA.
			s, err := controlplane.Start(ctx, controlplane.Options{DataDir: filepath.Join(target.StateDir, "server"), Listen: "127.0.0.1:0",
				DisableControllers: true, UnsafeNoFsync: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			if _, err := kubernetes.NewForConfigOrDie(s.Loopback).CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
				t.Errorf("restored service: %v", err)
			}
			old, _ := os.ReadFile(filepath.Join(o.serverDir(), "pki", "ca.crt"))
			restored, _ := os.ReadFile(filepath.Join(target.StateDir, "server", "pki", "ca.crt"))
			if !bytes.Equal(old, restored) {
				t.Error("the restored service has another CA")
			}
			if _, err := Restore(ctx, target, file, ""); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Errorf("restore into a used state dir: %v", err)
			}
		})
	}
}

func TestServiceRestoreRefusesBadArchives(t *testing.T) {
	ctx := context.Background()
	o, _ := fakeState(t)
	file := filepath.Join(t.TempDir(), "service.tgz")
	if _, err := Backup(ctx, o, file); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(file)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	for _, tc := range []struct {
		name    string
		data    []byte
		sumFile bool
		want    string
	}{
		{"corrupted, with its checksum file", flipped, true, "sha256"},
		{"corrupted, no checksum file", flipped, false, "bad service backup"},
		{"truncated", good[:len(good)/2], false, "truncated"},
		{"not gzip", []byte("hello"), false, "not gzip"},
		{"escaping entry", tarGz(t, map[string]string{"../evil": "x"}), false, `entry name "../evil"`},
		{"no manifest", tarGz(t, map[string]string{"service.json": "{}"}), false, "no MANIFEST.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "b.tgz")
			os.WriteFile(f, tc.data, 0o600)
			if tc.sumFile {
				sum, _ := os.ReadFile(file + ".sha256")
				os.WriteFile(f+".sha256", sum, 0o600)
			}
			parent := t.TempDir()
			_, err := Restore(ctx, Options{StateDir: filepath.Join(parent, "new")}, f, "")
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("restore: %v, want ErrBadBackup with %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(parent); len(entries) > 0 {
				t.Errorf("restore left %v", entries)
			}
			if _, err := os.Stat(filepath.Join(dir, "..", "evil")); err == nil {
				t.Error("an entry escaped the state dir")
			}
		})
	}
}

func tarGz(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// FuzzUnpack: no archive makes unpack panic or write outside its dir.
func FuzzUnpack(f *testing.F) {
	f.Add(tarGz(f, map[string]string{"service.json": "{}", manifestName: `{"format":"wharf-service-backup/1","files":{"etcd.db":"x"}}`}))
	f.Add(tarGz(f, map[string]string{"a/../../b": "x"}))
	f.Add([]byte("not an archive"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "in")
		os.Mkdir(dir, 0o700)
		unpack(bytes.NewReader(data), dir)
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 {
			t.Fatalf("unpack wrote beside its dir: %v", entries)
		}
	})
}
