package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteTar(t *testing.T) {
	tests := []struct {
		name    string
		files   []file
		want    []string
		wantErr bool
	}{
		{
			name:  "parents added, sorted",
			files: []file{{name: "usr/bin/x", mode: 0o755, data: []byte("x")}, {name: "/a", link: "usr/bin/x"}},
			want:  []string{"a", "usr/", "usr/bin/", "usr/bin/x"},
		},
		{
			name:  "given directory kept",
			files: []file{{name: "tmp", mode: 0o1777, dir: true}, {name: "tmp/f", mode: 0o644}},
			want:  []string{"tmp/", "tmp/f"},
		},
		{name: "duplicate", files: []file{{name: "a"}, {name: "./a"}}, wantErr: true},
		{name: "escape", files: []file{{name: "../etc/passwd"}}, wantErr: true},
		{name: "root", files: []file{{name: "/"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := writeTar(&buf, tt.files)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got []string
			tr := tar.NewReader(&buf)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, h.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenArchive(t *testing.T) {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	oci := filepath.Join(dir, "oci.tar")
	if err := WriteLayout(oci, []Named{{Ref: "registry.wharf.local/wharf/a:v1", Image: img}, {Ref: "example.com/b:v2", Index: idx}}); err != nil {
		t.Fatal(err)
	}
	docker := filepath.Join(dir, "docker.tar")
	tag, _ := name.NewTag("example.com/c:v3")
	if err := tarball.WriteToFile(docker, tag, img); err != nil {
		t.Fatal(err)
	}
	type item struct{ Ref, Kind string }
	tests := []struct {
		path string
		want []item
	}{
		{oci, []item{{"registry.wharf.local/wharf/a:v1", "image"}, {"example.com/b:v2", "index"}}},
		{docker, []item{{"example.com/c:v3", "image"}}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			a, err := OpenArchive(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var got []item
			for _, it := range a.Items {
				kind := "image"
				if it.Index != nil {
					kind = "index"
				}
				got = append(got, item{it.Ref, kind})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			// Same config in and out: the layout lost nothing.
			want, _ := img.ConfigName()
			if h, err := a.Items[0].Image.ConfigName(); err != nil || h != want {
				t.Errorf("config %s, %v; want %s", h, err, want)
			}
		})
	}
	t.Run("index digest kept", func(t *testing.T) {
		a, err := OpenArchive(oci)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		want, _ := idx.Digest()
		if got, err := a.Items[1].Index.Digest(); err != nil || got != want {
			t.Errorf("index digest %s, %v; want %s", got, err, want)
		}
	})
}
