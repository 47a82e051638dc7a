package containerd

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// mount is one line of /proc/self/mountinfo.
type mount struct {
	root       string // path inside the filesystem that is mounted
	mountPoint string
	fsType     string
	superOpts  string
}

func readMountinfo() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			return nil, fmt.Errorf("mountinfo: bad line %q", sc.Text())
		}
		mounts = append(mounts, mount{
			root:       unescapeMount(fields[3]),
			mountPoint: unescapeMount(fields[4]),
			fsType:     fields[sep+1],
			superOpts:  fields[sep+3],
		})
	}
	return mounts, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupHierarchies returns the mount point of every cgroup hierarchy,
// each once: the v1 ones, named ones (name=systemd) included, and the
// unified (v2) one of a hybrid setup. runc's cgroupfs driver creates a
// container's cgroup in all of them (the unified one included), so a
// host's subtree exists in all of them too.
func cgroupHierarchies() ([]string, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	seen := map[string]bool{}
	var dirs []string
	for _, m := range mounts {
		if (m.fsType != "cgroup" && m.fsType != "cgroup2") || m.root != "/" {
			continue
		}
		// The super options identify the hierarchy; a bind mount of the
		// same hierarchy repeats them.
		key := m.fsType + " " + m.superOpts
		if seen[key] {
			continue
		}
		seen[key] = true
		dirs = append(dirs, m.mountPoint)
	}
	return dirs, nil
}

// freezerHierarchy returns the mount point of the freezer controller.
func freezerHierarchy() (string, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if m.fsType != "cgroup" || m.root != "/" {
			continue
		}
		for _, o := range strings.Split(m.superOpts, ",") {
			if o == "freezer" {
				return m.mountPoint, nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup v1 freezer hierarchy mounted")
}

// mountsUnder returns the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var out []string
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := mounts[i].mountPoint
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// mountinfo lists mounts in mount order, so reversing it already
	// unmounts children before parents; a stable sort by depth makes that
	// hold for mounts made under an earlier mount's parent, too.
	sortDeepestFirst(out)
	return out, nil
}

func sortDeepestFirst(paths []string) {
	sort.SliceStable(paths, func(i, j int) bool {
		return strings.Count(paths[i], "/") > strings.Count(paths[j], "/")
	})
}
