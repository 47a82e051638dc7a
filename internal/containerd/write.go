package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// disabledPlugins are plugins Wharf never uses. Each one skipped is less
// start-up work and fewer surprises (aufs and zfs probe the kernel, the
// tracing exporter would dial out). Not io.containerd.runtime.v1.linux:
// the tasks service needs it, and without it containerd 1.6 starts without
// CRI.
var disabledPlugins = []string{
	"io.containerd.internal.v1.tracing",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.tracing.processor.v1.otlp",
}

// WriteConfig writes config.toml and certs.d/<alias>/hosts.toml for cfg,
// and creates the directories containerd and CNI need (the state
// directory's content comes with its tmpfs, when containerd starts). Files whose content
// is unchanged are left alone, so their modification time says when the
// configuration last changed (Start restarts an adopted containerd whose
// config.toml is newer than the process). certs.d entries for aliases no
// longer in cfg are removed, with their tokens.
func WriteConfig(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	p := PathsFor(cfg.StateDir)
	for _, d := range []string{p.Dir, p.Root, p.State, p.CertsDir, p.Opt, cfg.CNIConfDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("containerd config: %w", err)
		}
	}
	if err := writeIfChanged(p.ConfigFile, []byte(renderConfig(cfg, p)), 0o600); err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	return writeHosts(p.CertsDir, cfg.Registries)
}

// renderConfig is config.toml, version 2.
func renderConfig(cfg Config, p Paths) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	const cri = `plugins."io.containerd.grpc.v1.cri"`
	w("# Written by wharf; rewritten when the agent starts.")
	w("version = 2")
	w("root = %s", q(p.Root))
	w("state = %s", q(p.State))
	w("disabled_plugins = [%s]", qlist(disabledPlugins))
	w("")
	w("[grpc]\n  address = %s", q(p.Socket))
	w("[ttrpc]\n  address = %s", q(p.TTRPC))
	// No debug or metrics listeners: their defaults would be shared by
	// every host on the machine.
	w("[debug]\n  address = \"\"")
	w("[metrics]\n  address = \"\"")
	w("")
	w(`[plugins."io.containerd.internal.v1.opt"]`)
	w("  path = %s", q(p.Opt))
	w("")
	w("[%s]", cri)
	w("  sandbox_image = %s", q(cfg.SandboxImage))
	// Without CAP_SYS_RESOURCE every sandbox fails ("can't get final
	// child's PID from pipe: EOF") unless the OOM score adj is clamped.
	w("  restrict_oom_score_adj = true")
	w("  netns_mounts_under_state_dir = true")
	w("  disable_apparmor = true")
	w("  enable_selinux = false")
	w("  stream_server_address = \"127.0.0.1\"")
	w("  stream_server_port = \"0\"")
	w("[%s.containerd]", cri)
	w("  snapshotter = \"overlayfs\"")
	w("  default_runtime_name = \"runc\"")
	w("[%s.containerd.runtimes.runc]", cri)
	w("  runtime_type = \"io.containerd.runc.v2\"")
	w("[%s.containerd.runtimes.runc.options]", cri)
	w("  SystemdCgroup = false")
	w("  Root = %s", q(p.RuncRoot))
	w("  BinaryName = %s", q(runtimeBinary(cfg, p)))
	w("[%s.cni]", cri)
	w("  bin_dir = %s", q(cfg.CNIBinDir))
	w("  conf_dir = %s", q(cfg.CNIConfDir))
	w("  max_conf_num = 1")
	// config_path only: with mirrors (or configs) set as well, containerd
	// 1.6 starts without the CRI plugin.
	w("[%s.registry]", cri)
	w("  config_path = %s", q(p.CertsDir))
	return b.String()
}

// writeHosts makes certs.d match registries.
func writeHosts(certsDir string, registries map[string][]Endpoint) error {
	for alias, eps := range registries {
		if alias == "" || strings.ContainsAny(alias, `/\`) || alias == "." || alias == ".." {
			return fmt.Errorf("registry alias %q: not a host name", alias)
		}
		content, err := renderHosts(alias, eps)
		if err != nil {
			return fmt.Errorf("registry alias %q: %w", alias, err)
		}
		dir := filepath.Join(certsDir, alias)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("registry alias %q: %w", alias, err)
		}
		// 0600: it holds the node's bearer token.
		if err := writeIfChanged(filepath.Join(dir, "hosts.toml"), []byte(content), 0o600); err != nil {
			return fmt.Errorf("registry alias %q: %w", alias, err)
		}
	}
	entries, err := os.ReadDir(certsDir)
	if err != nil {
		return fmt.Errorf("registries: %w", err)
	}
	for _, e := range entries {
		if _, ok := registries[e.Name()]; !ok {
			if err := os.RemoveAll(filepath.Join(certsDir, e.Name())); err != nil {
				return fmt.Errorf("registries: stale %q: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// renderHosts is one alias's hosts.toml: every endpoint as a host, tried
// in order, and the last one again as the file's "server", containerd's
// fallback after the hosts; without it the fallback is https://<alias>,
// and the alias (registry.wharf.local) would be looked up through the
// machine's resolver whenever an image is missing. (containerd 1.6.20
// refuses a file without a host table, so the server cannot stand alone.)
// It sends the header entries on every request to that host, so a static
// bearer token works without a credential helper.
func renderHosts(alias string, eps []Endpoint) (string, error) {
	if len(eps) == 0 {
		return "", errors.New("no endpoint: containerd would look the alias up itself")
	}
	var b strings.Builder
	b.WriteString("# Written by wharf.\n")
	host := func(table string, ep Endpoint) error {
		u, err := url.Parse(ep.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("endpoint %q: want http(s)://host[:port]", ep.URL)
		}
		indent := ""
		if table != "" {
			fmt.Fprintf(&b, "\n[%s]\n", table)
			indent = "  "
		}
		fmt.Fprintf(&b, "%scapabilities = [\"pull\", \"resolve\"]\n", indent)
		if path := strings.TrimSuffix(u.Path, "/"); path != "" && path != "/v2" {
			fmt.Fprintf(&b, "%soverride_path = true\n", indent)
		}
		if ep.CAFile != "" {
			fmt.Fprintf(&b, "%sca = %s\n", indent, q(ep.CAFile))
		}
		if ep.BearerToken != "" {
			header := "header"
			if table != "" {
				header = table + ".header"
			}
			fmt.Fprintf(&b, "[%s]\n  Authorization = [%s]\n", header, q("Bearer "+ep.BearerToken))
		}
		return nil
	}
	last := eps[len(eps)-1]
	fmt.Fprintf(&b, "server = %s\n", q(last.URL))
	// The server's own settings are the file's top-level keys; its header
	// table, if any, comes before the host tables.
	if err := host("", last); err != nil {
		return "", err
	}
	for _, ep := range eps {
		if err := host("host."+q(ep.URL), ep); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// writeIfChanged replaces path atomically unless it already holds data.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// q quotes s as a TOML basic string.
func q(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func qlist(ss []string) string {
	sorted := append([]string(nil), ss...)
	sort.Strings(sorted)
	quoted := make([]string, len(sorted))
	for i, s := range sorted {
		quoted[i] = q(s)
	}
	return strings.Join(quoted, ", ")
}
