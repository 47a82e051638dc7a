package resources

import (
	"errors"
	"strings"
	"testing"
)

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		in                string
		name, tag, digest string
		bad               bool
	}{
		{in: "nginx", name: "nginx"},
		{in: "nginx:1.27", name: "nginx", tag: "1.27"},
		{in: "library/nginx:latest", name: "library/nginx", tag: "latest"},
		{in: "docker.io/library/nginx:1.27-alpine", name: "docker.io/library/nginx", tag: "1.27-alpine"},
		{in: "localhost:5000/wharf/pause:3.9", name: "localhost:5000/wharf/pause", tag: "3.9"},
		{in: "10.0.0.1:5000/app", name: "10.0.0.1:5000/app"},
		{in: "[fd00::1]:5000/app:v1", name: "[fd00::1]:5000/app", tag: "v1"},
		{in: "Registry.Example.COM/app", name: "Registry.Example.COM/app"},
		{in: "a__b/c-d.e_f--g:T_1.x-Y", name: "a__b/c-d.e_f--g", tag: "T_1.x-Y"},
		{in: "busybox@sha256:" + hex64, name: "busybox", digest: "sha256:" + hex64},
		{in: "busybox:1.36@sha256:" + hex64, name: "busybox", tag: "1.36", digest: "sha256:" + hex64},
		{in: "", bad: true},
		{in: "nginx:::1", bad: true},
		{in: "Nginx", bad: true},
		{in: "a b", bad: true},
		{in: "nginx:", bad: true},
		{in: ":1.0", bad: true},
		{in: "nginx/", bad: true},
		{in: "-nginx", bad: true},
		{in: "nginx:-1", bad: true},
		{in: "nginx:" + strings.Repeat("a", 129), bad: true},
		{in: "nginx@sha256:abc", bad: true},
		{in: "nginx@md5:" + hex64[:32], bad: true},
		{in: "nginx@sha256:" + hex64 + "00", bad: true},
		{in: strings.Repeat("a", 256), bad: true},
		{in: "a..b", bad: true},
		{in: "a/b//c", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ref, err := parseImageRef(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseImageRef(%q) = %+v, want an error", tt.in, ref)
				}
				if !errors.Is(err, errReferenceFormat) {
					t.Errorf("error %v is not errReferenceFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseImageRef(%q): %v", tt.in, err)
			}
			if ref.Name != tt.name || ref.Tag != tt.tag || ref.Digest != tt.digest {
				t.Errorf("parseImageRef(%q) = %+v, want name %q tag %q digest %q", tt.in, ref, tt.name, tt.tag, tt.digest)
			}
		})
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	for image, always := range map[string]bool{
		"nginx": true, "nginx:latest": true, "r:5000/nginx": true, "r:5000/nginx:latest": true,
		"nginx:1.27": false, "nginx@sha256:" + hex64: false, "nginx:latest@sha256:" + hex64: true, "nginx:::1": false,
	} {
		if got := defaultPullPolicyIsAlways(image); got != always {
			t.Errorf("defaultPullPolicyIsAlways(%q) = %v, want %v", image, got, always)
		}
	}
}

func FuzzParseImageRef(f *testing.F) {
	for _, s := range []string{"nginx", "localhost:5000/a/b:c", "busybox@sha256:" + hex64, "nginx:::1", "[::1]:5000/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := parseImageRef(s)
		if err != nil {
			return
		}
		// A parsed reference prints back to itself.
		back := ref.Name
		if ref.Tag != "" {
			back += ":" + ref.Tag
		}
		if ref.Digest != "" {
			back += "@" + ref.Digest
		}
		if back != s {
			t.Fatalf("parseImageRef(%q) = %+v, which prints as %q", s, ref, back)
		}
	})
}
