package podnet

import (
	"fmt"
	"os"
	"path/filepath"

	"wharf.dev/wharf/internal/network/cniplugin"
)

// PluginFile is the plugin's file name; `make build` puts it next to the
// wharf binary, and the hosts' providers copy it along.
const PluginFile = "wharf-cni"

// FindPlugin returns the plugin next to the running executable.
func FindPlugin() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", PluginFile, err)
	}
	plugin := filepath.Join(filepath.Dir(exe), PluginFile)
	if _, err := os.Stat(plugin); err != nil {
		return "", fmt.Errorf("%s must be next to %s (make build puts it there): %w", PluginFile, exe, err)
	}
	return plugin, nil
}

// InstallPlugin makes binDir (a CNI bin_dir) run plugin as the pod
// network's plugin type and, with loopback, as "loopback" too: a bin_dir
// of its own needs nothing else. The entries are symbolic links, replaced
// atomically when they point elsewhere.
func InstallPlugin(plugin, binDir string, loopback bool) error {
	names := []string{cniplugin.Type}
	if loopback {
		names = append(names, cniplugin.LoopbackType)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("CNI bin dir: %w", err)
	}
	for _, name := range names {
		link := filepath.Join(binDir, name)
		if cur, err := os.Readlink(link); err == nil && cur == plugin {
			continue
		}
		tmp := link + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(plugin, tmp); err != nil {
			return fmt.Errorf("install %s: %w", name, err)
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("install %s: %w", name, err)
		}
	}
	return nil
}
