package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/images"
)

// TestRegistryOverride checks that --registry-url and its CA and token
// files replace the server as registry.wharf.local in hosts.toml.
func TestRegistryOverride(t *testing.T) {
	dir := t.TempDir()
	creds := &Credentials{Dir: filepath.Join(dir, "agent"), Token: "node-token"}
	ca := filepath.Join(dir, "registry-ca.crt")
	token := filepath.Join(dir, "registry-token")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600)
	os.WriteFile(token, []byte("service-pull-token\n"), 0o600)

	tests := []struct {
		name     string
		cfg      Config
		want     []string // in hosts.toml
		wantNone []string
	}{
		{"the server", Config{ServerURL: "https://10.0.0.2:6443"},
			[]string{`"https://10.0.0.2:6443"`, "Bearer node-token", filepath.Join(creds.Dir, caFile)}, nil},
		{"the service's registry", Config{ServerURL: "https://10.0.0.2:6443",
			RegistryURL: "https://10.123.0.1:7443", RegistryCAFile: ca, RegistryTokenFile: token},
			[]string{`"https://10.123.0.1:7443"`, "Bearer service-pull-token", ca}, []string{"10.0.0.2", "node-token"}},
		{"no token", Config{ServerURL: "https://10.0.0.2:6443", RegistryURL: "https://10.123.0.1:7443"},
			[]string{`"https://10.123.0.1:7443"`}, []string{"Bearer", "10.0.0.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := registryEndpoint(tt.cfg, creds)
			if err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			err = containerd.WriteConfig(containerd.Config{StateDir: state, SandboxImage: images.PauseImage,
				Registries: map[string][]containerd.Endpoint{images.Registry: {ep}}})
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(containerd.PathsFor(state).CertsDir, images.Registry, "hosts.toml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(data), s) {
					t.Errorf("hosts.toml lacks %q:\n%s", s, data)
				}
			}
			for _, s := range tt.wantNone {
				if strings.Contains(string(data), s) {
					t.Errorf("hosts.toml has %q:\n%s", s, data)
				}
			}
		})
	}

	if _, err := registryEndpoint(Config{RegistryURL: "https://x", RegistryTokenFile: filepath.Join(dir, "missing")}, creds); err == nil {
		t.Errorf("a missing token file is not an error")
	}
	cfg := Config{ServerURL: "https://x", Token: "t", NodeName: "n", NodeIP: "10.0.0.1", RegistryCAFile: ca}
	if _, err := cfg.withDefaults(); err == nil {
		t.Errorf("a registry CA file without a registry URL is not an error")
	}
}
