// Package mountinfo reads this process's mount table
// (/proc/self/mountinfo): the cgroup hierarchies mounted, whether a
// directory is a mount point, and the mounts left below a directory that
// is about to be removed (which UnmountAll unmounts).
package mountinfo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Root       string // path inside the filesystem that is mounted
	MountPoint string
	FSType     string
	SuperOpts  string
}

// Read returns every mount, in mount order.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []Mount
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
		mounts = append(mounts, Mount{
			Root:       unescape(fields[3]),
			MountPoint: unescape(fields[4]),
			FSType:     fields[sep+1],
			SuperOpts:  fields[sep+3],
		})
	}
	return mounts, sc.Err()
}

// unescape undoes the octal escapes (\040 for a space) of mountinfo.
func unescape(s string) string {
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

// Under returns the mount points at or below dir, deepest first: the
// order to unmount them in.
func Under(dir string) ([]string, error) {
	mounts, err := Read()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var out []string
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := mounts[i].MountPoint
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// mountinfo lists mounts in mount order, so reversing it already
	// unmounts children before parents; a stable sort by depth makes that
	// hold for mounts made under an earlier mount's parent, too.
	SortDeepestFirst(out)
	return out, nil
}

// SortDeepestFirst sorts paths by depth, deepest first, keeping the order
// of paths of equal depth.
func SortDeepestFirst(paths []string) {
	sort.SliceStable(paths, func(i, j int) bool {
		return strings.Count(paths[i], "/") > strings.Count(paths[j], "/")
	})
}

// RemoveAll removes dir and everything below it, unless something is
// still mounted at or below it: removing through a mount could remove
// what is not the caller's (a bind mount of another directory).
func RemoveAll(dir string) error {
	if left, err := Under(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	} else if len(left) > 0 {
		return fmt.Errorf("remove %s: still mounted below it: %v", dir, left)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// IsMountPoint reports whether dir is a mount point.
func IsMountPoint(dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	mounts, err := Read()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.MountPoint == abs {
			return true, nil
		}
	}
	return false, nil
}

// UnmountAll unmounts every mount at or below dir, deepest first. A busy
// mount is detached (it goes when its last user does).
func UnmountAll(dir string) error {
	var errs []error
	for pass := 0; pass < 3; pass++ {
		mounts, err := Under(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range mounts {
			err := syscall.Unmount(m, 0)
			if errors.Is(err, syscall.EBUSY) {
				err = syscall.Unmount(m, syscall.MNT_DETACH)
			}
			if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}
