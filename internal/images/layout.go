package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Named is an image or an image index (one of the two is set) with the
// reference it goes by, e.g. registry.wharf.local/wharf/pause:v1.
type Named struct {
	Ref   string
	Image v1.Image
	Index v1.ImageIndex
}

// Annotations naming an image in an OCI layout's index.json, as `docker
// save` and containerd write and read them.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// blob is one file under blobs/sha256/.
type blob struct {
	size int64
	open func() (io.ReadCloser, error)
}

// WriteLayout writes images as an OCI image layout in a tar file at
// path, atomically. Its entries are sorted and carry fixed metadata, so
// the same images always give the same file.
func WriteLayout(path string, items []Named) error {
	blobs := map[v1.Hash]blob{}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, it := range items {
		d, err := collect(it, blobs)
		if err != nil {
			return fmt.Errorf("%s: %w", it.Ref, err)
		}
		if it.Ref != "" {
			d.Annotations = map[string]string{annotationImageName: it.Ref}
			if tag, err := name.NewTag(it.Ref); err == nil {
				d.Annotations[annotationRefName] = tag.TagStr()
			}
		}
		index.Manifests = append(index.Manifests, d)
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeLayoutTar(tmp, indexJSON, blobs); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeLayoutTar(w io.Writer, indexJSON []byte, blobs map[v1.Hash]blob) error {
	tw := tar.NewWriter(w)
	header := func(name string, typ byte, mode, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: epoch, Uname: "root", Gname: "root"})
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := header(dir, tar.TypeDir, 0o755, 0); err != nil {
			return err
		}
	}
	digests := make([]v1.Hash, 0, len(blobs))
	for h := range blobs {
		digests = append(digests, h)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].Hex < digests[j].Hex })
	for _, h := range digests {
		b := blobs[h]
		if err := header("blobs/sha256/"+h.Hex, tar.TypeReg, 0o644, b.size); err != nil {
			return err
		}
		rc, err := b.open()
		if err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
		_, err = io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"index.json", indexJSON}, {"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}} {
		if err := header(f.name, tar.TypeReg, 0o644, int64(len(f.data))); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// collect adds the blobs of an image or index to blobs and returns its
// descriptor.
func collect(it Named, blobs map[v1.Hash]blob) (v1.Descriptor, error) {
	raw := func(b []byte) blob {
		return blob{size: int64(len(b)), open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	if it.Index != nil {
		m, err := it.Index.IndexManifest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		for _, d := range m.Manifests {
			var child Named
			switch {
			case d.MediaType.IsIndex():
				child.Index, err = it.Index.ImageIndex(d.Digest)
			case d.MediaType.IsImage():
				child.Image, err = it.Index.Image(d.Digest)
			default:
				return v1.Descriptor{}, fmt.Errorf("manifest %s: unsupported media type %q", d.Digest, d.MediaType)
			}
			if err != nil {
				return v1.Descriptor{}, err
			}
			if _, err := collect(child, blobs); err != nil {
				return v1.Descriptor{}, err
			}
		}
		return addManifest(it.Index, blobs, raw)
	}
	if it.Image == nil {
		return v1.Descriptor{}, fmt.Errorf("neither an image nor an index")
	}
	cfgName, err := it.Image.ConfigName()
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := it.Image.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	blobs[cfgName] = raw(cfg)
	layers, err := it.Image.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		size, err := l.Size()
		if err != nil {
			return v1.Descriptor{}, err
		}
		blobs[d] = blob{size: size, open: l.Compressed}
	}
	return addManifest(it.Image, blobs, raw)
}

type manifester interface {
	RawManifest() ([]byte, error)
	MediaType() (types.MediaType, error)
}

func addManifest(m manifester, blobs map[v1.Hash]blob, raw func([]byte) blob) (v1.Descriptor, error) {
	b, err := m.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := m.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, size, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return v1.Descriptor{}, err
	}
	blobs[h] = raw(b)
	return v1.Descriptor{MediaType: mt, Size: size, Digest: h}, nil
}
