package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/wire"
)

// BackupConfig sizes the backup benchmark.
type BackupConfig struct {
	Objects int
	Runs    int
}

// BackupGoal is the goal for each of backup and restore of 10,000 objects.
const BackupGoal = 2 * time.Second

// Backup measures a cluster backup and restore with Objects ConfigMaps
// (1 KiB of data each) in a `wharf server` child process (API only):
// backup is what the cluster service does, a GET of the snapshot endpoint
// over HTTPS into a file, synced and verified (checksum, etcd's hash,
// bbolt's check); restore is `wharf server --restore-from` of that file
// in a new data dir, from the process start to the server ready, and the
// restore of the data dir alone. Runs times each; medians against the goal.
func Backup(ctx context.Context, env Env, out io.Writer, cfg BackupConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "backup"), "--disable-controllers")
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintf(out, "backup: creating %d configmaps...\n", cfg.Objects)
	value := strings.Repeat("x", 1024)
	if err := parallel(cfg.Objects, 16, func(i int) error {
		_, err := srv.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%05d", i)}, Data: map[string]string{"v": value},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}

	var backups, restores, starts []time.Duration
	var info storage.SnapshotInfo
	file := filepath.Join(env.WorkDir, "backup.db")
	for run := range cfg.Runs {
		os.Remove(file)
		t0 := time.Now()
		if info, err = fetchSnapshot(ctx, srv.Config, file); err != nil {
			return err
		}
		backups = append(backups, time.Since(t0))
		fmt.Fprintf(out, "backup: run %d: backup %s (%d bytes, %d keys, revision %d)\n", run+1, round(backups[run]), info.Size, info.Keys, info.Revision)

		dir := filepath.Join(env.WorkDir, fmt.Sprintf("restore-%d", run))
		t1 := time.Now()
		if _, err := storage.RestoreSnapshot(slog.New(slog.DiscardHandler), file, filepath.Join(dir, "etcd"), storage.RestoreConfig{SHA256: info.SHA256}); err != nil {
			return err
		}
		restores = append(restores, time.Since(t1))
		os.RemoveAll(dir)

		t2 := time.Now()
		restored, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, fmt.Sprintf("server-%d", run)),
			"--disable-controllers", "--restore-from", file, "--restore-sha256", info.SHA256)
		if err != nil {
			return err
		}
		starts = append(starts, time.Since(t2))
		list, err := restored.Client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		restored.Stop()
		if err != nil {
			return err
		}
		n := 0
		for _, cm := range list.Items {
			if strings.HasPrefix(cm.Name, "bench-") {
				n++
			}
		}
		if n != cfg.Objects {
			return fmt.Errorf("restored server has %d of the %d configmaps", n, cfg.Objects)
		}
		fmt.Fprintf(out, "backup: run %d: restore of the data dir %s; server start with --restore-from to ready %s (%d configmaps back)\n",
			run+1, round(restores[run]), round(starts[run]), n)
	}
	fmt.Fprintf(out, "backup: %d objects, %d runs, medians (goal <= %s each):\n", cfg.Objects, cfg.Runs, BackupGoal)
	fmt.Fprintf(out, "backup:   backup (snapshot over HTTPS, written, verified) %s\n", round(median(backups)))
	fmt.Fprintf(out, "backup:   restore (data dir from the snapshot)           %s\n", round(median(restores)))
	fmt.Fprintf(out, "backup:   restore + server start to ready                %s\n", round(median(starts)))
	return nil
}

// fetchSnapshot GETs the snapshot endpoint as cfg's user into file.
func fetchSnapshot(ctx context.Context, cfg *rest.Config, file string) (storage.SnapshotInfo, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+wire.SnapshotPath, nil)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return storage.SnapshotInfo{}, fmt.Errorf("snapshot: %s", resp.Status)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return storage.SnapshotInfo{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return storage.SnapshotInfo{}, err
	}
	if err := f.Close(); err != nil {
		return storage.SnapshotInfo{}, err
	}
	return storage.VerifySnapshot(file, resp.Header.Get(wire.SnapshotSHA256Header))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
