package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

func (reg *Registry) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	if r.Method == http.MethodHead && reg.shared != nil {
		if _, err := os.Stat(reg.blobPath(rt.ref)); errors.Is(err, fs.ErrNotExist) {
			// Whether it exists, and its size: no need to copy it here.
			size, err := reg.blobSize(r.Context(), rt.ref)
			if err != nil {
				return err
			}
			blobHeaders(w, rt.ref)
			w.Header().Set("Accept-Ranges", "bytes")
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			return nil
		}
	}
	if err := reg.fetchBlob(r.Context(), rt.ref); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.Open(reg.blobPath(rt.ref))
	if errors.Is(err, fs.ErrNotExist) {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s unknown", rt.ref)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	blobHeaders(w, rt.ref)
	// ServeContent answers HEAD and Range requests (resumed pulls).
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

func blobHeaders(w http.ResponseWriter, digest string) {
	h := w.Header()
	h.Set("Docker-Content-Digest", digest)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+digest+`"`)
	h.Set("Cache-Control", "max-age=31536000")
}

// startUpload serves POST .../blobs/uploads/: a cross-repository mount,
// a monolithic upload (?digest=), or the start of a chunked one.
func (reg *Registry) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" && checkDigest(mount) == nil {
		if _, err := reg.blobSize(r.Context(), mount); err == nil {
			return blobCreated(w, rt.name, mount)
		}
		// Unknown blob: fall back to an upload, as the spec allows.
	}
	digest := q.Get("digest")
	if digest != "" {
		if err := checkDigest(digest); err != nil {
			return err
		}
	}
	reg.sweepUploads(time.Now())
	id := newUploadID()
	if err := os.MkdirAll(reg.uploadPath(""), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(reg.uploadPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if digest != "" {
		return reg.finishUpload(w, r, rt.name, id, digest)
	}
	return uploadAccepted(w, rt.name, id, 0, http.StatusAccepted)
}

// serveUpload serves an upload in progress: its status (GET), a chunk
// (PATCH), the last chunk and digest (PUT), or its cancellation (DELETE).
func (reg *Registry) serveUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	mu, _ := reg.uploads.LoadOrStore(rt.id, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	fi, err := os.Stat(reg.uploadPath(rt.id))
	if errors.Is(err, fs.ErrNotExist) {
		reg.uploads.Delete(rt.id)
		return newError(http.StatusNotFound, codeBlobUploadUnknown, "upload %s unknown", rt.id)
	}
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		return uploadAccepted(w, rt.name, rt.id, fi.Size(), http.StatusNoContent)
	case http.MethodPatch:
		n, err := reg.appendChunk(r, rt.id, fi.Size())
		if err != nil {
			return err
		}
		return uploadAccepted(w, rt.name, rt.id, fi.Size()+n, http.StatusAccepted)
	case http.MethodPut:
		defer reg.uploads.Delete(rt.id)
		return reg.finishUpload(w, r, rt.name, rt.id, r.URL.Query().Get("digest"))
	case http.MethodDelete:
		reg.uploads.Delete(rt.id)
		if err := os.Remove(reg.uploadPath(rt.id)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return newError(http.StatusMethodNotAllowed, codeUnsupported, "%s is not supported on an upload", r.Method)
}

// appendChunk appends the request body to an upload of size bytes. A
// Content-Range must start where the upload ends.
func (reg *Registry) appendChunk(r *http.Request, id string, size int64) (int64, error) {
	want := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, length, err := parseContentRange(cr)
		if err != nil {
			return 0, newError(http.StatusBadRequest, codeBlobUploadInvalid, "%v", err)
		}
		if start != size {
			return 0, newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
				"chunk starts at %d but the upload has %d bytes", start, size)
		}
		want = length
	}
	f, err := os.OpenFile(reg.uploadPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(f, r.Body)
	if err != nil {
		// Drop what a broken chunk wrote, so the client can resend it.
		f.Truncate(size)
		return 0, fmt.Errorf("upload %s: %w", id, err)
	}
	if want >= 0 && n != want {
		f.Truncate(size)
		return 0, newError(http.StatusBadRequest, codeSizeInvalid, "Content-Range says %d bytes, body has %d", want, n)
	}
	return n, nil
}

// finishUpload appends any last chunk, checks the digest of the whole
// upload and moves it into the blob store. A wrong digest ends the upload.
func (reg *Registry) finishUpload(w http.ResponseWriter, r *http.Request, name, id, digest string) error {
	path := reg.uploadPath(id)
	if err := checkDigest(digest); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if _, err := reg.appendChunk(r, id, fi.Size()); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err == nil && reg.shared == nil {
		err = f.Sync() // with shared storage, etcd makes the blob durable
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		os.Remove(path)
		return newError(http.StatusBadRequest, codeDigestInvalid, "upload has digest %s, not %s", got, digest)
	}
	if err := reg.commitBlob(path, digest); err != nil {
		return err
	}
	if err := reg.shareBlob(r.Context(), digest); err != nil {
		return err
	}
	return blobCreated(w, name, digest)
}

func blobCreated(w http.ResponseWriter, name, digest string) error {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+digest)
	h.Set("Docker-Content-Digest", digest)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// uploadAccepted tells the client where to send the next chunk and how
// much has arrived (Range is inclusive, "0-0" when empty, as Docker's
// registry answers).
func uploadAccepted(w http.ResponseWriter, name, id string, size int64, status int) error {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", fmt.Sprintf("0-%d", max(size-1, 0)))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// uploadTTL is how long an upload may sit untouched before it is taken
// for abandoned (a client that died mid-push) and removed.
const uploadTTL = 24 * time.Hour

// sweepUploads removes abandoned uploads, at most once an hour, so that
// failed pushes do not fill the disk.
func (reg *Registry) sweepUploads(now time.Time) {
	last := reg.lastSweep.Load()
	if now.Unix()-last < 3600 || !reg.lastSweep.CompareAndSwap(last, now.Unix()) {
		return
	}
	entries, err := os.ReadDir(reg.uploadPath(""))
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > uploadTTL {
			if err := os.Remove(reg.uploadPath(e.Name())); err == nil {
				reg.log.Info("removed abandoned upload", "id", e.Name(), "modified", fi.ModTime())
			}
		}
	}
}
