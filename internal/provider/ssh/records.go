package ssh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"wharf.dev/wharf/internal/provider"
)

// record says which machine serves a host. It is written before anything
// happens on the machine and removed only once the machine is clean, so
// a crash at any point leaves a record that DeleteHost can act on.
type record struct {
	Cluster provider.ClusterRef `json:"cluster"`
	Name    string              `json:"name"`
	Role    string              `json:"role"`
	// Machine is the entry of Config.Hosts serving the host.
	Machine string `json:"machine"`
	// Init is "systemd" or "process" once the host was started.
	Init    string    `json:"init,omitempty"`
	Created time.Time `json:"created"`
}

// store keeps records as <dir>/hosts/<cluster key>/<host>.json. Claims
// hold an flock on <dir>/lock, so that providers over the same dir (one
// per template, or in another process) never hand out a machine twice.
type store struct {
	dir string
	mu  sync.Mutex
}

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "hosts"), 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) knownHostsFile() string { return filepath.Join(s.dir, "known_hosts") }

func (s *store) path(c provider.ClusterRef, name string) string {
	return filepath.Join(s.dir, "hosts", c.Key(), name+".json")
}

// locked runs fn holding the store's lock.
func (s *store) locked(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("records lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("records lock: %w", err)
	}
	return fn()
}

// get returns a host's record, or provider.ErrNotFound.
func (s *store) get(c provider.ClusterRef, name string) (record, error) {
	var r record
	data, err := os.ReadFile(s.path(c, name))
	if errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("host %q of cluster %s: %w", name, c.Key(), provider.ErrNotFound)
	} else if err != nil {
		return r, fmt.Errorf("host record: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("host record %s: %w", s.path(c, name), err)
	}
	return r, nil
}

// put writes a record atomically: a crash leaves the old one or the new.
func (s *store) put(r record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := s.path(r.Cluster, r.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("host record: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".record-*")
	if err != nil {
		return fmt.Errorf("host record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(append(data, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("host record %s: %w", p, err)
	}
	return nil
}

// remove deletes a record (releasing its machine) and its cluster's
// directory once empty.
func (s *store) remove(c provider.ClusterRef, name string) error {
	return s.locked(func() error {
		if err := os.Remove(s.path(c, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("host record: %w", err)
		}
		os.Remove(filepath.Dir(s.path(c, name)))
		return nil
	})
}

// list returns the records of one cluster (nil: of every cluster),
// sorted by name.
func (s *store) list(c *provider.ClusterRef) ([]record, error) {
	pattern := filepath.Join(s.dir, "hosts", "*", "*.json")
	if c != nil {
		pattern = filepath.Join(s.dir, "hosts", c.Key(), "*.json")
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var out []record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, fmt.Errorf("host record: %w", err)
		}
		var r record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("host record %s: %w", f, err)
		}
		if c == nil || r.Cluster.UID == c.UID {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// claim returns the host's record, or makes one (fresh) on the first
// machine of machines that serves no host and is not in skip.
func (s *store) claim(spec provider.HostSpec, machines []string, skip map[string]bool) (r record, fresh bool, err error) {
	err = s.locked(func() error {
		var err error
		if r, err = s.get(spec.Cluster, spec.Name); err == nil || !errors.Is(err, provider.ErrNotFound) {
			return err
		}
		all, err := s.list(nil)
		if err != nil {
			return err
		}
		var used []string
		for _, o := range all {
			used = append(used, normalize(o.Machine))
		}
		for _, m := range machines {
			if !slices.Contains(used, normalize(m)) && !skip[normalize(m)] {
				r = record{Cluster: spec.Cluster, Name: spec.Name, Role: spec.Role, Machine: m, Created: time.Now().UTC()}
				fresh = true
				return s.put(r)
			}
		}
		if len(skip) > 0 {
			return fmt.Errorf("host %q: no free machine: of %d, %d are in use and %d unreachable", spec.Name, len(machines), len(used), len(skip))
		}
		return fmt.Errorf("host %q: no free machine: all %d are in use", spec.Name, len(machines))
	})
	return r, fresh, err
}

// normalize makes "h" and "h:22" the same machine.
func normalize(m string) string {
	dial, _ := machineAddr(m)
	return dial
}
