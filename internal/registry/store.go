package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Paths of the on-disk layout (see the package comment). Names, tags
// and digests are validated by parsePath before they get here, so they
// are safe relative paths.
func (reg *Registry) blobPath(digest string) string {
	return filepath.Join(reg.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func (reg *Registry) uploadPath(id string) string { return filepath.Join(reg.dir, "uploads", id) }

func (reg *Registry) repoPath(name string) string {
	return filepath.Join(reg.dir, "repositories", filepath.FromSlash(name), "_manifests")
}

// blobSize returns a blob's size, or BLOB_UNKNOWN.
func (reg *Registry) blobSize(ctx context.Context, digest string) (int64, error) {
	fi, err := os.Stat(reg.blobPath(digest))
	if errors.Is(err, fs.ErrNotExist) && reg.shared != nil {
		size, ok, err := reg.shared.BlobSize(ctx, strings.TrimPrefix(digest, "sha256:"))
		if err != nil || ok {
			return size, err
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return 0, newError(http.StatusNotFound, codeBlobUnknown, "blob %s unknown", digest)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// writeFile replaces path with data atomically and durably: a crash
// leaves the old content or the new, never a torn file.
func (reg *Registry) writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil && reg.shared == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return reg.syncDir(filepath.Dir(path))
}

// commitBlob moves a complete, verified file into the blob store.
func (reg *Registry) commitBlob(tmp, digest string) error {
	dst := reg.blobPath(digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return reg.syncDir(filepath.Dir(dst))
}

// syncDir makes a rename in dir durable. With shared storage the
// directory is a cache (a blob lost in a crash is fetched again), so
// neither files nor directories are synced.
func (reg *Registry) syncDir(dir string) error {
	if reg.shared != nil {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newUploadID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// readLink reads a small metadata file (a tag or a revision), or returns
// fs.ErrNotExist.
func readLink(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// repositories lists every repository with a _manifests directory.
func (reg *Registry) repositories(ctx context.Context) ([]string, error) {
	if reg.shared != nil {
		return reg.sharedRepositories(ctx)
	}
	root := filepath.Join(reg.dir, "repositories")
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return fs.SkipAll
			}
			return err
		}
		// "_manifests" cannot be a name component, which starts with a
		// letter or digit: it marks a repository.
		if d.IsDir() && d.Name() == "_manifests" {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
			return fs.SkipDir
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}

// tags lists a repository's tags, or NAME_UNKNOWN.
func (reg *Registry) tags(ctx context.Context, name string) ([]string, error) {
	if reg.shared != nil {
		tags, ok, err := reg.sharedTags(ctx, name)
		if err == nil && !ok {
			err = newError(http.StatusNotFound, codeNameUnknown, "repository %s unknown", name)
		}
		return tags, err
	}
	if _, err := os.Stat(reg.repoPath(name)); errors.Is(err, fs.ErrNotExist) {
		return nil, newError(http.StatusNotFound, codeNameUnknown, "repository %s unknown", name)
	}
	entries, err := os.ReadDir(filepath.Join(reg.repoPath(name), "tags"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tags := []string{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			tags = append(tags, e.Name())
		}
	}
	sort.Strings(tags)
	return tags, nil
}
