package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
)

// resolve returns the digest and media type of a manifest in a repository.
func (reg *Registry) resolve(ctx context.Context, name, ref string) (digest, mediaType string, err error) {
	digest = ref
	if !isDigest(ref) {
		if digest, err = reg.readMeta(ctx, tagRel(name, ref)); err != nil {
			return "", "", reg.unknownManifest(name, ref, err)
		}
	}
	mediaType, err = reg.readMeta(ctx, revisionRel(name, digest))
	if err != nil {
		return "", "", reg.unknownManifest(name, ref, err)
	}
	return digest, mediaType, nil
}

func (reg *Registry) unknownManifest(name, ref string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return newError(http.StatusNotFound, codeManifestUnknown, "manifest %s unknown in %s", ref, name)
	}
	return err
}

func (reg *Registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	digest, mediaType, err := reg.resolve(r.Context(), rt.name, rt.ref)
	if err != nil {
		return err
	}
	if err := reg.fetchBlob(r.Context(), digest); err != nil {
		return fmt.Errorf("manifest %s of %s: %w", digest, rt.name, err)
	}
	body, err := os.ReadFile(reg.blobPath(digest))
	if err != nil {
		return fmt.Errorf("manifest %s of %s: %w", digest, rt.name, err)
	}
	h := w.Header()
	h.Set("Content-Type", mediaType)
	h.Set("Docker-Content-Digest", digest)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("ETag", `"`+digest+`"`)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

// putManifest stores a manifest by tag or digest. Its blobs (or, for an
// index, its manifests) must already be in the registry.
func (reg *Registry) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if len(body) > maxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest exceeds %d bytes", maxManifestSize)
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if isDigest(rt.ref) && rt.ref != digest {
		return newError(http.StatusBadRequest, codeDigestInvalid, "manifest has digest %s, not %s", digest, rt.ref)
	}
	mediaType, m, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := reg.checkReferences(ctx, rt.name, m); err != nil {
		return err
	}
	if _, err := os.Stat(reg.blobPath(digest)); err != nil {
		if err := reg.writeFile(reg.blobPath(digest), body); err != nil {
			return err
		}
	}
	if err := reg.shareBlob(ctx, digest); err != nil {
		return err
	}
	// The revision before the tag: a tag never points at nothing.
	meta := []string{revisionRel(rt.name, digest), mediaType}
	if !isDigest(rt.ref) {
		meta = append(meta, tagRel(rt.name, rt.ref), digest)
	}
	if reg.shared != nil {
		meta = append(meta, repositoryRel(rt.name), "")
	}
	if err := reg.writeMeta(ctx, meta...); err != nil {
		return err
	}
	reg.log.Info("manifest pushed", "repository", rt.name, "reference", rt.ref, "digest", digest)
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+digest)
	h.Set("Docker-Content-Digest", digest)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteManifest removes a tag, or a manifest with every tag on it.
func (reg *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	digest, _, err := reg.resolve(ctx, rt.name, rt.ref)
	if err != nil {
		return err
	}
	if !isDigest(rt.ref) {
		if err := reg.removeMeta(ctx, tagRel(rt.name, rt.ref)); err != nil {
			return err
		}
	} else {
		tags, err := reg.tags(ctx, rt.name)
		if err != nil {
			return err
		}
		for _, t := range tags {
			if d, err := reg.readMeta(ctx, tagRel(rt.name, t)); err == nil && d == digest {
				if err := reg.removeMeta(ctx, tagRel(rt.name, t)); err != nil {
					return err
				}
			}
		}
		if err := reg.removeMeta(ctx, revisionRel(rt.name, digest)); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (reg *Registry) serveCatalog(w http.ResponseWriter, r *http.Request) error {
	repos, err := reg.repositories(r.Context())
	if err != nil {
		return err
	}
	page, err := paginate(w, r, repos)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string][]string{"repositories": page})
}

func (reg *Registry) serveTags(w http.ResponseWriter, r *http.Request, rt route) error {
	tags, err := reg.tags(r.Context(), rt.name)
	if err != nil {
		return err
	}
	page, err := paginate(w, r, tags)
	if err != nil {
		return err
	}
	return writeJSON(w, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, page})
}

// paginate applies ?n= and ?last= to a sorted list and, when more
// remain, links to the next page.
func paginate(w http.ResponseWriter, r *http.Request, all []string) ([]string, error) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		all = all[sort.SearchStrings(all, last):]
		if len(all) > 0 && all[0] == last {
			all = all[1:]
		}
	}
	if q.Get("n") == "" {
		return all, nil
	}
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 {
		return nil, newError(http.StatusBadRequest, codeUnsupported, "n must be a non-negative integer")
	}
	if n >= len(all) {
		return all, nil
	}
	page := all[:n]
	if n > 0 {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {page[n-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
	}
	return page, nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, err := w.Write(buf.Bytes())
	return err
}
