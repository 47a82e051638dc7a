package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Archive is an image tarball opened for reading.
type Archive struct {
	// Items are the named images and indexes in the tarball.
	Items []Named
	dir   string
}

// OpenArchive reads an OCI layout tarball or a docker-archive tarball.
// An OCI layout is unpacked into a temporary directory, so images of any
// size stream from disk; Close removes it.
func OpenArchive(path string) (*Archive, error) {
	kind, err := archiveKind(path)
	if err != nil {
		return nil, err
	}
	if kind == "docker" {
		return openDockerArchive(path)
	}
	dir, err := os.MkdirTemp("", "wharf-layout-")
	if err != nil {
		return nil, err
	}
	a := &Archive{dir: dir}
	if err := a.openLayout(path); err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Close releases what OpenArchive unpacked.
func (a *Archive) Close() error {
	if a.dir == "" {
		return nil
	}
	return os.RemoveAll(a.dir)
}

// archiveKind tells an OCI layout ("oci", with index.json) from a
// docker-archive ("docker", with only manifest.json).
func archiveKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	docker := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s: not a tarball: %w", path, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "index.json":
			return "oci", nil
		case "manifest.json":
			docker = true
		}
	}
	if docker {
		return "docker", nil
	}
	return "", fmt.Errorf("%s: neither an OCI layout (index.json) nor a docker-archive (manifest.json)", path)
}

func (a *Archive) openLayout(path string) error {
	if err := untar(path, a.dir); err != nil {
		return err
	}
	idx, err := layout.ImageIndexFromPath(a.dir)
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		it := Named{Ref: d.Annotations[annotationImageName]}
		if it.Ref == "" {
			// Some writers put the full reference in ref.name; a bare
			// tag there names nothing we could push to.
			if ref := d.Annotations[annotationRefName]; strings.ContainsAny(ref, "/:") {
				it.Ref = ref
			}
		}
		switch {
		case d.MediaType.IsIndex():
			it.Index, err = idx.ImageIndex(d.Digest)
		case d.MediaType.IsImage():
			it.Image, err = idx.Image(d.Digest)
		default:
			continue // e.g. attestations: nothing to run
		}
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		a.Items = append(a.Items, it)
	}
	return nil
}

// untar unpacks the regular files of a tarball under dir, refusing any
// name that would land outside it.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if !filepath.IsLocal(h.Name) {
			return fmt.Errorf("tar entry %q is outside the archive", h.Name)
		}
		dst := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", h.Name, err)
		}
	}
}

func openDockerArchive(path string) (*Archive, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a := &Archive{}
	for i, d := range m {
		refs := d.RepoTags
		if len(refs) == 0 {
			refs = []string{""}
		}
		for _, ref := range refs {
			var tag *name.Tag
			if ref != "" {
				t, err := name.NewTag(ref)
				if err != nil {
					return nil, fmt.Errorf("%s: image %d: %w", path, i, err)
				}
				tag = &t
			}
			img, err := tarball.Image(opener, tag)
			if err != nil {
				return nil, fmt.Errorf("%s: image %d: %w", path, i, err)
			}
			a.Items = append(a.Items, Named{Ref: ref, Image: img})
		}
	}
	return a, nil
}
