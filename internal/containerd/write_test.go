package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		StateDir:     dir,
		Runtime:      "/opt/test/crun",
		SandboxImage: "registry.wharf.local/wharf/pause:v1",
		Registries: map[string][]Endpoint{
			"registry.wharf.local": {{URL: "https://10.0.0.1:6443", CAFile: "/s/agent/ca.crt", BearerToken: "tok"}},
			"plain.local":          {{URL: "http://127.0.0.1:5000"}, {URL: "https://mirror.example/prefix"}},
		},
	}
	if err := WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	p := PathsFor(dir)
	config := read(t, p.ConfigFile)
	for _, want := range []string{
		`version = 2`,
		`root = "` + dir + `/containerd/root"`,
		`state = "` + dir + `/containerd/state"`,
		`address = "` + dir + `/containerd/containerd.sock"`,
		`address = "` + dir + `/containerd/containerd.sock.ttrpc"`,
		`path = "` + dir + `/containerd/opt"`,
		`sandbox_image = "registry.wharf.local/wharf/pause:v1"`,
		`restrict_oom_score_adj = true`,
		`netns_mounts_under_state_dir = true`,
		`disable_apparmor = true`,
		`stream_server_port = "0"`,
		`SystemdCgroup = false`,
		`Root = "` + dir + `/containerd/state/runc"`,
		`BinaryName = "` + dir + `/containerd/state/bin/crun"`, // see bindRuntime
		`bin_dir = "` + dir + `/cni/bin"`,
		`conf_dir = "` + dir + `/cni/net.d"`,
		`config_path = "` + dir + `/containerd/certs.d"`,
	} {
		if !strings.Contains(config, want) {
			t.Errorf("config.toml lacks %s:\n%s", want, config)
		}
	}
	if strings.Contains(config, "mirrors") {
		t.Errorf("config.toml mentions mirrors (containerd then starts without CRI):\n%s", config)
	}

	hosts := read(t, filepath.Join(p.CertsDir, "registry.wharf.local", "hosts.toml"))
	// The registry is reached by address only: containerd's fallback is
	// the "server", which would otherwise be https://registry.wharf.local,
	// looked up through the machine's resolver.
	want := `# Written by wharf.
server = "https://10.0.0.1:6443"
capabilities = ["pull", "resolve"]
ca = "/s/agent/ca.crt"
[header]
  Authorization = ["Bearer tok"]

[host."https://10.0.0.1:6443"]
  capabilities = ["pull", "resolve"]
  ca = "/s/agent/ca.crt"
[host."https://10.0.0.1:6443".header]
  Authorization = ["Bearer tok"]
`
	if hosts != want {
		t.Errorf("hosts.toml:\n%s\nwant:\n%s", hosts, want)
	}
	plain := read(t, filepath.Join(p.CertsDir, "plain.local", "hosts.toml"))
	if !strings.Contains(plain, `[host."http://127.0.0.1:5000"]`) || !strings.Contains(plain, `server = "https://mirror.example/prefix"`) ||
		!strings.Contains(plain, "override_path = true") || strings.Contains(plain, "Authorization") || strings.Contains(plain, "plain.local\"") {
		t.Errorf("plain.local hosts.toml:\n%s", plain)
	}
	if fi, _ := os.Stat(filepath.Join(p.CertsDir, "registry.wharf.local", "hosts.toml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("hosts.toml mode %v: it holds a token, want 0600", fi.Mode().Perm())
	}

	// Unchanged content is not rewritten; a dropped alias goes.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p.ConfigFile, old, old)
	delete(cfg.Registries, "plain.local")
	if err := WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p.ConfigFile); !fi.ModTime().Equal(old) {
		t.Errorf("config.toml rewritten with the same content")
	}
	if _, err := os.Stat(filepath.Join(p.CertsDir, "plain.local")); !os.IsNotExist(err) {
		t.Errorf("dropped registry alias still configured: %v", err)
	}
}

func TestWriteConfigRejects(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no state dir":      {},
		"relative cgroup":   {StateDir: t.TempDir(), CgroupRoot: "wharf/x"},
		"root cgroup":       {StateDir: t.TempDir(), CgroupRoot: "/"},
		"long socket path":  {StateDir: "/tmp/" + strings.Repeat("x", 100)},
		"bad alias":         {StateDir: t.TempDir(), Registries: map[string][]Endpoint{"../etc": nil}},
		"bad endpoint":      {StateDir: t.TempDir(), Registries: map[string][]Endpoint{"r.local": {{URL: "10.0.0.1:6443"}}}},
		"endpoint scheme":   {StateDir: t.TempDir(), Registries: map[string][]Endpoint{"r.local": {{URL: "ftp://10.0.0.1"}}}},
		"endpoint hostless": {StateDir: t.TempDir(), Registries: map[string][]Endpoint{"r.local": {{URL: "https:///v2"}}}},
	} {
		if err := WriteConfig(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestQuoteTOML(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:          `"plain"`,
		`a"b\c`:          `"a\"b\\c"`,
		"tab\tnewline\n": `"tab\u0009newline\u000A"`,
	} {
		if got := q(in); got != want {
			t.Errorf("q(%q) = %s, want %s", in, got, want)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
