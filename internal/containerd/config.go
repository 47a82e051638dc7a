// Package containerd runs one host's containerd: it writes the daemon's
// config (CRI plugin, registries through hosts.toml, CNI paths) under the
// host's state directory, starts the daemon in the host's cgroup subtree and
// network namespace (or adopts the one already running), restarts it when
// it dies, and removes every trace of a host on purge.
//
// Several hosts share one machine, so nothing here may use containerd's
// defaults for paths: each host has its own root, state, sockets, opt
// directory, runc root and registry config, all under StateDir/containerd;
// the state directory (runc's root inside it) is a tmpfs, as /run is on a
// standard installation (see mountState).
// The agent talks to the daemon only through CRI (see internal/cri).
package containerd

import (
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"

	"wharf.dev/wharf/internal/wire"
)

// maxSocketPath is the limit of sun_path (108 bytes with the NUL).
const maxSocketPath = 107

// Config says how one host's containerd runs.
type Config struct {
	// StateDir is the host's state directory; containerd's files live in
	// StateDir/containerd (see Paths).
	StateDir string
	// CgroupRoot is the host's cgroup subtree, e.g. /wharf/node-1:
	// containerd runs in CgroupRoot/daemon in every hierarchy (the v1
	// ones and a hybrid setup's unified one), and so do the shims it
	// starts. Empty leaves containerd in the caller's cgroups.
	CgroupRoot string
	// NetNS optionally names a network namespace file
	// (/var/run/netns/NAME) to run containerd in.
	NetNS string
	// SandboxImage is the pause image, e.g.
	// registry.wharf.local/wharf/pause:v1.
	SandboxImage string
	// Registries maps a registry alias host (registry.wharf.local) to the
	// endpoints that serve it, tried in order.
	Registries map[string][]Endpoint
	// CNIConfDir defaults to StateDir/cni/net.d (wire.CNIConfDir), where
	// the agent writes the conflist.
	CNIConfDir string
	// CNIBinDir is where containerd runs CNI plugins from; default
	// StateDir/cni/bin, where the agent installs wharf-cni.
	CNIBinDir string
	// Binary is the containerd executable; default "containerd" on PATH.
	Binary string
	// Runtime is the OCI runtime the runc shim runs; default crun if it
	// is on PATH (a C program: a container's create and start cost a
	// third of runc's CPU time), else runc.
	Runtime string
	// SharedDirs are directories under which the agent mounts volumes
	// (memory emptyDirs, local persistent volumes) while containerd runs.
	// containerd lives in a mount namespace of its own, and this
	// machine's root mount is private: Start makes each a shared mount
	// point before containerd's namespace is made, so that what is mounted
	// below it later shows there too, and so in the containers.
	SharedDirs []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Endpoint is one server of a registry alias.
type Endpoint struct {
	// URL is scheme://host[:port] of the registry API (containerd appends
	// /v2); a URL with another path is used as given (override_path).
	URL string
	// CAFile is a PEM file with the CA that signed the server's
	// certificate; empty means the system roots.
	CAFile string
	// BearerToken is sent as "Authorization: Bearer <token>" on every
	// request; empty sends none.
	BearerToken string
}

// Paths are the files and directories of one host's containerd.
type Paths struct {
	Dir        string // StateDir/containerd
	ConfigFile string // config.toml
	Root       string // root/ (content, snapshots, metadata)
	State      string // state/ (tasks, sandboxes, netns mounts): a tmpfs, see mountState
	Socket     string // containerd.sock (gRPC: CRI)
	TTRPC      string // containerd.sock.ttrpc
	PidFile    string // containerd.pid
	LogFile    string // containerd.log
	CertsDir   string // certs.d/ (registry.config_path)
	RuncRoot   string // state/runc/ (runc's container states)
	TempDir    string // state/tmp/ (containerd's TMPDIR)
	Opt        string // opt/
}

// PathsFor returns the layout of containerd's files under stateDir.
func PathsFor(stateDir string) Paths {
	dir := filepath.Join(stateDir, "containerd")
	return Paths{
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "config.toml"),
		Root:       filepath.Join(dir, "root"),
		State:      filepath.Join(dir, "state"),
		Socket:     filepath.Join(dir, "containerd.sock"),
		TTRPC:      filepath.Join(dir, "containerd.sock.ttrpc"),
		PidFile:    filepath.Join(dir, "containerd.pid"),
		LogFile:    filepath.Join(dir, "containerd.log"),
		CertsDir:   filepath.Join(dir, "certs.d"),
		RuncRoot:   filepath.Join(dir, "state", "runc"),
		TempDir:    filepath.Join(dir, "state", "tmp"),
		Opt:        filepath.Join(dir, "opt"),
	}
}

// withDefaults fills in the optional fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.StateDir == "" {
		return c, fmt.Errorf("containerd config: no state dir")
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return c, fmt.Errorf("containerd config: state dir: %w", err)
	}
	c.StateDir = abs
	if c.CNIConfDir == "" {
		c.CNIConfDir = filepath.Join(c.StateDir, wire.CNIConfDir)
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = filepath.Join(c.StateDir, "cni", "bin")
	}
	if c.Binary == "" {
		c.Binary = "containerd"
	}
	if c.Runtime == "" {
		c.Runtime = "runc"
		if _, err := exec.LookPath("crun"); err == nil {
			c.Runtime = "crun"
		}
	}
	if path, err := exec.LookPath(c.Runtime); err == nil {
		c.Runtime = path
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CgroupRoot != "" && (!filepath.IsAbs(c.CgroupRoot) || filepath.Clean(c.CgroupRoot) == "/") {
		return c, fmt.Errorf("containerd config: cgroup root %q must be an absolute path below /", c.CgroupRoot)
	}
	// The ttrpc socket is the longer of the two.
	if p := PathsFor(c.StateDir).TTRPC; len(p) > maxSocketPath {
		return c, fmt.Errorf("containerd config: socket path %q is longer than %d bytes: use a shorter state dir", p, maxSocketPath)
	}
	return c, nil
}
