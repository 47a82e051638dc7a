package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// file is one entry of a layer or of a tarball: a regular file, a
// directory (dir) or a symbolic link (link).
type file struct {
	name string // relative, slash-separated, e.g. "bin/sh"
	mode int64  // permission bits (with sticky, setuid, setgid)
	data []byte
	link string
	dir  bool
}

// writeTar writes files in name order, adding any missing parent
// directories, with the same owner (root) and time (epoch) on every entry:
// the output depends on the files' names, modes and contents only.
func writeTar(w io.Writer, files []file) error {
	byName := map[string]file{}
	for _, f := range files {
		name := strings.Trim(path.Clean(f.name), "/")
		if name == "." || name == "" || strings.HasPrefix(name, "../") || name == ".." {
			return fmt.Errorf("bad file name %q", f.name)
		}
		if _, dup := byName[name]; dup {
			return fmt.Errorf("file %q given twice", name)
		}
		f.name = name
		byName[name] = f
	}
	for name := range byName {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := byName[dir]; !ok {
				byName[dir] = file{name: dir, mode: 0o755, dir: true}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	// "a" sorts before "a/b", so directories precede their contents.
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, name := range names {
		f := byName[name]
		h := &tar.Header{Name: name, Mode: f.mode, ModTime: epoch, Uname: "root", Gname: "root"}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return fmt.Errorf("tar %s: %w", name, err)
			}
		}
	}
	return tw.Close()
}

// newLayer makes a gzipped layer of files. gzip's header carries neither
// a time nor a file name here, so the compressed bytes are stable too.
func newLayer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := writeTar(zw, files); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

type imageConfig struct {
	name            string
	entrypoint, cmd []string
}

// newImage makes a linux/amd64 OCI image of one layer.
func newImage(layer v1.Layer, c imageConfig) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "wharf image build", Comment: c.name},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		Entrypoint: c.entrypoint,
		Cmd:        c.cmd,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels:     map[string]string{"org.opencontainers.image.title": c.name, "org.opencontainers.image.vendor": "wharf"},
	}
	return mutate.ConfigFile(img, cf)
}
