package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"wharf.dev/wharf/internal/provider"
)

// recordFile is a host's record, inside its state dir.
const recordFile = "host.json"

// logFile receives the host process's stdout and stderr.
const logFile = "wharf.log"

// record is what the provider keeps of a host on disk: everything needed
// to find, adopt and remove it after the service restarts.
type record struct {
	Name    string              `json:"name"`
	Role    string              `json:"role"`
	Cluster provider.ClusterRef `json:"cluster"`
	// Address is the host's IP on the provider network; a record holds its
	// address from the moment it is written, so no two hosts share one.
	Address    string `json:"address"`
	NetNS      string `json:"netns"`
	Veth       string `json:"veth"`
	CgroupRoot string `json:"cgroupRoot"`
	// PID and StartTime (clock ticks after boot, /proc/<pid>/stat field
	// 22) identify the host process; a pid alone could be reused.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"`
	// Spec is the spec the process was last started with, without the
	// files' content (secrets stay in their own 0600 files only).
	Spec    recordedSpec `json:"spec"`
	Created time.Time    `json:"created"`
}

type recordedSpec struct {
	CPU      string   `json:"cpu,omitempty"`
	Memory   string   `json:"memory,omitempty"`
	HostCIDR string   `json:"hostCIDR,omitempty"`
	Files    []string `json:"files,omitempty"`
	Args     []string `json:"args,omitempty"`
}

// names are the deterministic names of a host's pieces: DeleteHost finds
// them even if the record is gone.
type names struct {
	dir        string // state dir
	netns      string // /var/run/netns/<netns>
	veth       string // root side of the veth pair
	cgroupRoot string // /wharf/<cluster key>/<host>
}

// netnsDir is where `ip netns` keeps named network namespaces.
const netnsDir = "/var/run/netns"

// peerName is the host side of its veth pair, inside the host's netns.
const peerName = "eth0"

func (p *Provider) namesFor(cluster provider.ClusterRef, host string) names {
	key := cluster.Key()
	// Interface names have at most 15 bytes; a hash keeps them unique.
	sum := sha256.Sum256([]byte(key + "/" + host))
	return names{
		// Short, fixed-length directories: containerd's sockets live below
		// them, and a unix socket path has at most 107 bytes.
		dir:        filepath.Join(p.cfg.StateDir, hex.EncodeToString(sum[:])[:12]),
		netns:      "wh-" + key + "-" + host,
		veth:       "wh" + hex.EncodeToString(sum[:])[:11],
		cgroupRoot: "/wharf/" + key + "/" + host,
	}
}

func (n names) netnsPath() string { return filepath.Join(netnsDir, n.netns) }

// NetNS is the path of a host's network namespace.
func (p *Provider) NetNS(cluster provider.ClusterRef, host string) string {
	return p.namesFor(cluster, host).netnsPath()
}

// checkName refuses names that would escape the state dir or make
// unusable netns and cgroup names.
func checkName(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00 \t\n") || len(s) > 200 {
		return fmt.Errorf("invalid %s %q", what, s)
	}
	return nil
}

func readRecord(dir string) (*record, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, provider.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("host record: %w", err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("host record %s: %w", dir, err)
	}
	return &r, nil
}

func writeRecord(dir string, r *record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("host record: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, recordFile), append(data, '\n')); err != nil {
		return fmt.Errorf("host record: %w", err)
	}
	return nil
}

// writeFileAtomic writes a 0600 file that readers see whole or not at
// all, even after a crash.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: ENOENT, ignored
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// allRecords reads every host record under the state dir, of every
// cluster: address allocation must see them all.
func (p *Provider) allRecords() ([]*record, error) {
	files, err := filepath.Glob(filepath.Join(p.cfg.StateDir, "*", recordFile))
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, f := range files {
		r, err := readRecord(filepath.Dir(f))
		if errors.Is(err, provider.ErrNotFound) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// writeFiles writes a spec's files below the host's state dir, each 0600
// and atomically (a restarting host never reads half a certificate).
func writeFiles(dir string, files map[string][]byte) error {
	if err := checkFiles(files); err != nil {
		return err
	}
	for rel, content := range files {
		path := filepath.Join(dir, filepath.Clean(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("file %q: %w", rel, err)
		}
		if err := writeFileAtomic(path, content); err != nil {
			return fmt.Errorf("file %q: %w", rel, err)
		}
	}
	return nil
}

// checkFiles refuses file names outside the state dir or of the
// provider's own files.
func checkFiles(files map[string][]byte) error {
	for rel := range files {
		clean := filepath.Clean(rel)
		if rel == "" || filepath.IsAbs(rel) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("file %q: must be a relative path inside the state dir", rel)
		}
		if clean == recordFile || clean == logFile {
			return fmt.Errorf("file %q: reserved for the provider", rel)
		}
	}
	return nil
}
