package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// spec describes one image: its files and how it starts.
type spec struct {
	name       string
	files      func(ctx context.Context, o BuildOptions) ([]file, error)
	entrypoint []string
	cmd        []string
}

var specs = []spec{
	{name: "pause", files: goBinaryFiles("wharf.dev/wharf/images/pause", "pause"), entrypoint: []string{"/pause"}},
	// testapp carries busybox too, so that `kubectl exec -it … -- sh` works in it.
	{name: "testapp", files: union(busyboxFiles, goBinaryFiles("wharf.dev/wharf/images/testapp", "testapp")), entrypoint: []string{"/testapp"}, cmd: []string{"serve"}},
	{name: "busybox", files: busyboxFiles, cmd: []string{"sh"}},
}

func (s spec) build(ctx context.Context, o BuildOptions) (v1.Image, error) {
	files, err := s.files(ctx, o)
	if err != nil {
		return nil, err
	}
	layer, err := newLayer(files)
	if err != nil {
		return nil, err
	}
	return newImage(layer, imageConfig{name: s.name, entrypoint: s.entrypoint, cmd: s.cmd})
}

// union is the files of several sources in one layer.
func union(sources ...func(context.Context, BuildOptions) ([]file, error)) func(context.Context, BuildOptions) ([]file, error) {
	return func(ctx context.Context, o BuildOptions) ([]file, error) {
		var all []file
		for _, src := range sources {
			files, err := src(ctx, o)
			if err != nil {
				return nil, err
			}
			all = append(all, files...)
		}
		return all, nil
	}
}

// goBinaryFiles compiles a main package of this module into a static
// linux/amd64 binary at /<binName>. Every flag that would stamp the build
// with where, when or from which commit it ran is turned off.
func goBinaryFiles(pkg, binName string) func(context.Context, BuildOptions) ([]file, error) {
	return func(ctx context.Context, o BuildOptions) ([]file, error) {
		dir, err := os.MkdirTemp("", "wharf-image-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, binName)
		cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-buildvcs=false",
			"-ldflags", "-s -w -buildid=", "-o", out, pkg)
		cmd.Dir = o.ModuleDir
		// GOAMD64 changes the code generated; pin it to what every
		// amd64 machine runs.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			where, _ := filepath.Abs(o.ModuleDir)
			return nil, fmt.Errorf("go build %s in %s (run it inside the wharf checkout): %w: %s",
				pkg, where, err, strings.TrimSpace(stderr.String()))
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		return []file{{name: binName, mode: 0o755, data: data}}, nil
	}
}

// busyboxFiles is Debian's static busybox at /bin/busybox, a symlink to it
// for each applet, and the few files and directories a shell expects.
func busyboxFiles(ctx context.Context, o BuildOptions) ([]file, error) {
	data, err := os.ReadFile(o.Busybox)
	if err != nil {
		return nil, fmt.Errorf("busybox (Debian package busybox-static): %w", err)
	}
	out, err := exec.CommandContext(ctx, o.Busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", o.Busybox, err)
	}
	files := []file{
		{name: "bin/busybox", mode: 0o755, data: data},
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{name: "root", mode: 0o700, dir: true},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: "var", mode: 0o755, dir: true},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, file{name: "bin/" + applet, mode: 0o777, link: "busybox"})
	}
	return files, nil
}
