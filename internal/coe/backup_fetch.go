package coe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/snapshotfile"
	"wharf.dev/wharf/internal/wire"
)

// snapshotSource is a cluster API and its admin's credentials.
type snapshotSource struct {
	address, token string
	caPEM          []byte
}

// fetchSnapshot GETs the cluster's etcd snapshot into path: a temporary
// file beside it, checked against the server's checksum and verified as a
// snapshot, synced, renamed, mode 0600. A failure leaves no file at path.
func fetchSnapshot(ctx context.Context, src snapshotSource, path string) (snapshotfile.Info, error) {
	hc, err := rest.HTTPClientFor(&rest.Config{Host: src.address, BearerToken: src.token, TLSClientConfig: rest.TLSClientConfig{CAData: src.caPEM}})
	if err != nil {
		return snapshotfile.Info{}, fmt.Errorf("client of %s: %w", src.address, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(src.address, "/")+wire.SnapshotPath, nil)
	if err != nil {
		return snapshotfile.Info{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return snapshotfile.Info{}, fmt.Errorf("%w: snapshot from %s: %w", errRetryBackup, src.address, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		err := fmt.Errorf("snapshot from %s: %s: %s", src.address, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("%w: %w", errRetryBackup, err)
		}
		return snapshotfile.Info{}, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return snapshotfile.Info{}, fmt.Errorf("backup dir: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return snapshotfile.Info{}, fmt.Errorf("backup file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		return snapshotfile.Info{}, fmt.Errorf("%w: snapshot from %s: %w", errRetryBackup, src.address, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want := resp.Header.Get(wire.SnapshotSHA256Header); want != "" && want != sum {
		return snapshotfile.Info{}, fmt.Errorf("%w: snapshot from %s: sha256 %s, the server said %s", errRetryBackup, src.address, sum, want)
	}
	if err := f.Sync(); err != nil {
		return snapshotfile.Info{}, fmt.Errorf("backup file: %w", err)
	}
	if err := f.Close(); err != nil {
		return snapshotfile.Info{}, fmt.Errorf("backup file: %w", err)
	}
	// The file as a whole is checked here; its database is the server's
	// to read (the service links no etcd), and the server said what it holds.
	info, err := snapshotfile.Check(tmp, sum)
	if err != nil {
		return snapshotfile.Info{}, err
	}
	info.Revision, _ = strconv.ParseInt(resp.Header.Get(wire.SnapshotRevisionHeader), 10, 64)
	info.Keys, _ = strconv.Atoi(resp.Header.Get(wire.SnapshotKeysHeader))
	if err := os.Rename(tmp, path); err != nil {
		return snapshotfile.Info{}, fmt.Errorf("backup file: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return info, nil
}
