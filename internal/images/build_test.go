package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var (
	buildOnce sync.Once
	builds    [2][]Built
	buildErr  error
)

// buildTwice builds every image into two directories, once per test
// binary (TestMain removes them).
func buildTwice(t *testing.T) [2][]Built {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("/bin/busybox missing: install Debian's busybox-static")
	}
	buildOnce.Do(func() {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		for i := range builds {
			dir, err := os.MkdirTemp("", "wharf-images-test-")
			if err != nil {
				buildErr = err
				return
			}
			builds[i], buildErr = Build(context.Background(), log, BuildOptions{OutDir: dir})
			if buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builds
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range builds {
		if len(b) > 0 {
			os.RemoveAll(filepath.Dir(b[0].Path))
		}
	}
	os.Exit(code)
}

func TestBuildIsDeterministic(t *testing.T) {
	b := buildTwice(t)
	if len(b[0]) != len(Names()) {
		t.Fatalf("built %d images, want %d", len(b[0]), len(Names()))
	}
	for i := range b[0] {
		first, second := b[0][i], b[1][i]
		t.Run(first.Name, func(t *testing.T) {
			if first.Digest != second.Digest {
				t.Errorf("digests differ: %s, %s", first.Digest, second.Digest)
			}
			x, err := os.ReadFile(first.Path)
			if err != nil {
				t.Fatal(err)
			}
			y, err := os.ReadFile(second.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(x, y) {
				t.Errorf("tarballs %s and %s differ", first.Path, second.Path)
			}
			if first.Ref != Ref(first.Name) || filepath.Base(first.Path) != first.Name+".tar" {
				t.Errorf("ref %s, path %s", first.Ref, first.Path)
			}
		})
	}
}

// entry is what a test checks of a layer's tar entry.
type entry struct {
	Name, Link string
	Type       byte
	Mode       int64
}

func TestImageContents(t *testing.T) {
	b := buildTwice(t)
	tests := []struct {
		name       string
		entrypoint []string
		cmd        []string
		// want are entries that must be present, exactly so.
		want []entry
	}{
		{"pause", []string{"/pause"}, nil, []entry{{Name: "pause", Type: tar.TypeReg, Mode: 0o755}}},
		{"testapp", []string{"/testapp"}, []string{"serve"}, []entry{{Name: "testapp", Type: tar.TypeReg, Mode: 0o755}}},
		{"busybox", nil, []string{"sh"}, []entry{
			{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "bin/busybox", Type: tar.TypeReg, Mode: 0o755},
			{Name: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Link: "busybox"},
			{Name: "bin/wget", Type: tar.TypeSymlink, Mode: 0o777, Link: "busybox"},
			{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644},
			{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := openImage(t, b[0][i].Path, b[0][i].Ref)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.entrypoint, cf.Config.Entrypoint); diff != "" {
				t.Errorf("entrypoint (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.cmd, cf.Config.Cmd); diff != "" {
				t.Errorf("cmd (-want +got):\n%s", diff)
			}
			if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(epoch) {
				t.Errorf("os %s, arch %s, created %s", cf.OS, cf.Architecture, cf.Created)
			}
			entries, files := layerEntries(t, img)
			for _, w := range tt.want {
				if got, ok := entries[w.Name]; !ok || got != w {
					t.Errorf("entry %s: got %+v, want %+v", w.Name, got, w)
				}
			}
			if tt.name == "testapp" {
				runHelp(t, files["testapp"])
			}
		})
	}
}

func openImage(t *testing.T, path, ref string) v1.Image {
	t.Helper()
	a, err := OpenArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if len(a.Items) != 1 || a.Items[0].Ref != ref || a.Items[0].Image == nil {
		t.Fatalf("archive %s holds %+v, want one image %s", path, a.Items, ref)
	}
	return a.Items[0].Image
}

// layerEntries reads the only layer of img, checking every entry's
// owner, time and order on the way.
func layerEntries(t *testing.T, img v1.Image) (map[string]entry, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries, files := map[string]entry{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	prev := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) || h.Name <= prev {
			t.Errorf("entry %s: uid %d gid %d mtime %s after %q", h.Name, h.Uid, h.Gid, h.ModTime, prev)
		}
		prev = h.Name
		entries[h.Name] = entry{Name: h.Name, Link: h.Linkname, Type: h.Typeflag, Mode: h.Mode}
		if h.Typeflag == tar.TypeReg {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
	return entries, files
}

// runHelp runs the image's testapp binary: it is a working program.
func runHelp(t *testing.T, binary []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "testapp")
	if err := os.WriteFile(path, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("testapp --help: %v\n%s", err, out)
	}
	for _, cmd := range []string{"serve", "exit", "tcp-echo", "udp-echo", "dns-lookup", "client", "sleep"} {
		if !strings.Contains(string(out), "testapp "+cmd) {
			t.Errorf("testapp --help does not explain %s:\n%s", cmd, out)
		}
	}
}
