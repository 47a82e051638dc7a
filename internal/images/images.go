// Package images builds the project's container images (pause, testapp,
// busybox) reproducibly, reads and writes them as tarballs, and pushes
// them to and lists a registry.
//
// No public registry is reachable from a cluster, so every image a
// cluster runs by default is built here, from source in this repository
// or from Debian's busybox-static, and pushed to the cluster's registry.
// Builds are deterministic: the same sources, Go toolchain and busybox
// binary give the same digests, every time, on every machine.
//
// Tarballs are OCI image layouts (oci-layout, index.json, blobs/sha256/…)
// in a tar file, as `docker save` (25+) writes them, whose index names each
// image with the annotations io.containerd.image.name (the full reference)
// and org.opencontainers.image.ref.name (the tag). Reading also accepts
// docker-archive tarballs (manifest.json with RepoTags).
package images

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Registry is the host name images are tagged with. It is never resolved:
// each host's containerd maps it to the cluster's server (docs/agent.md).
const Registry = "registry.wharf.local"

// Tag is the tag of the images built here.
const Tag = "v1"

// PauseImage is the pod sandbox image.
const PauseImage = Registry + "/wharf/pause:" + Tag

// Ref returns the reference of one of the project's images, e.g.
// registry.wharf.local/wharf/testapp:v1.
func Ref(name string) string { return Registry + "/wharf/" + name + ":" + Tag }

// epoch is the time of every file in every layer and of every image
// config, so builds do not depend on when they run.
var epoch = time.Unix(0, 0).UTC()

// BuildOptions say where builds find their inputs and put their outputs.
type BuildOptions struct {
	// OutDir receives <name>.tar for each image.
	OutDir string
	// Only restricts the build to these images (default: all of Names).
	Only []string
	// Go is the go command (default "go").
	Go string
	// ModuleDir is a directory inside the wharf module, where `go build`
	// runs (default: the working directory).
	ModuleDir string
	// Busybox is Debian's static busybox (default /bin/busybox).
	Busybox string
}

// Built is one image written by Build.
type Built struct {
	Name   string  // e.g. "pause"
	Ref    string  // e.g. registry.wharf.local/wharf/pause:v1
	Digest v1.Hash // of the manifest
	Path   string  // the tarball
	Size   int64   // of the manifest, config and layers
}

// Names are the images Build knows, in build order.
func Names() []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

// Build builds the images and writes one tarball for each.
func Build(ctx context.Context, log *slog.Logger, o BuildOptions) ([]Built, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.ModuleDir == "" {
		o.ModuleDir = "."
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	for _, n := range o.Only {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("unknown image %q (known: %v)", n, Names())
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	var out []Built
	for _, s := range specs {
		if len(o.Only) > 0 && !slices.Contains(o.Only, s.name) {
			continue
		}
		start := time.Now()
		img, err := s.build(ctx, o)
		if err != nil {
			return out, fmt.Errorf("image %s: %w", s.name, err)
		}
		b := Built{Name: s.name, Ref: Ref(s.name), Path: filepath.Join(o.OutDir, s.name+".tar")}
		if b.Digest, err = img.Digest(); err != nil {
			return out, fmt.Errorf("image %s: %w", s.name, err)
		}
		if b.Size, err = imageSize(img); err != nil {
			return out, fmt.Errorf("image %s: %w", s.name, err)
		}
		if err := WriteLayout(b.Path, []Named{{Ref: b.Ref, Image: img}}); err != nil {
			return out, fmt.Errorf("image %s: %w", s.name, err)
		}
		log.Info("built image", "ref", b.Ref, "digest", b.Digest.String(), "path", b.Path, "duration", time.Since(start).Round(time.Millisecond))
		out = append(out, b)
	}
	return out, nil
}

// imageSize is what pulling the image transfers: manifest, config, layers.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}
