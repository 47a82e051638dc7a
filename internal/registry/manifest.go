package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// Media types of manifests the registry accepts. Docker's schema 1 is
// not among them: nothing built in the last years uses it.
const (
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxManifestSize bounds what is read into memory, as other registries do.
const maxManifestSize = 4 << 20

type descriptor struct {
	MediaType string   `json:"mediaType"`
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	URLs      []string `json:"urls,omitempty"`
}

// manifest is what the registry needs of an image manifest or index:
// the blobs and manifests it refers to.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        *descriptor  `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
}

// parseManifest checks a manifest's JSON and returns its media type
// (from Content-Type, else from its mediaType field) and content.
func parseManifest(contentType string, body []byte) (string, *manifest, error) {
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "manifest is not JSON: %v", err)
	}
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = m.MediaType
	}
	if m.SchemaVersion != 2 {
		return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "schemaVersion %d: only 2 is supported", m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != mt {
		return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "Content-Type %q but mediaType %q", mt, m.MediaType)
	}
	isIndex := mt == mediaOCIIndex || mt == mediaDockerList
	switch {
	case mt == "":
		return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "no media type: set Content-Type")
	case isIndex && (m.Config != nil || len(m.Layers) > 0):
		return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "an index has no config or layers")
	case !isIndex && m.Config == nil:
		return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "%s without a config", mt)
	}
	for _, d := range m.refs() {
		if err := checkDigest(d.Digest); err != nil {
			return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "descriptor digest %q: only sha256 is supported", d.Digest)
		}
		if d.Size < 0 {
			return "", nil, newError(http.StatusBadRequest, codeManifestInvalid, "descriptor %s: negative size", d.Digest)
		}
	}
	return mt, &m, nil
}

func (m *manifest) refs() []descriptor {
	refs := append([]descriptor(nil), m.Layers...)
	if m.Config != nil {
		refs = append(refs, *m.Config)
	}
	return append(refs, m.Manifests...)
}

// checkReferences refuses a manifest whose blobs, or an index whose
// manifests, are not in the registry: pulling it would fail later.
func (reg *Registry) checkReferences(ctx context.Context, name string, m *manifest) error {
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs[:len(blobs):len(blobs)], *m.Config)
	}
	for _, d := range blobs {
		if len(d.URLs) > 0 {
			continue // a foreign layer, fetched from its URLs
		}
		size, err := reg.blobSize(ctx, d.Digest)
		if err != nil {
			return newError(http.StatusBadRequest, codeManifestBlobUnknown, "blob %s unknown", d.Digest)
		}
		if size != d.Size {
			return newError(http.StatusBadRequest, codeManifestInvalid, "blob %s has %d bytes, not %d", d.Digest, size, d.Size)
		}
	}
	for _, d := range m.Manifests {
		if _, err := reg.readMeta(ctx, revisionRel(name, d.Digest)); err != nil {
			return newError(http.StatusBadRequest, codeManifestBlobUnknown, "manifest %s unknown in %s", d.Digest, name)
		}
	}
	return nil
}
