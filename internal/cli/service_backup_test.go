package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestServiceBackupRestoreFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "backup", "--state-dir", dir}, "-o FILE is required"},
		{[]string{"service", "backup", "--state-dir", filepath.Join(dir, "none"), "-o", filepath.Join(dir, "b.tgz")}, "no service state in"},
		{[]string{"service", "restore", "--state-dir", filepath.Join(dir, "new")}, "-f FILE is required"},
		{[]string{"service", "restore", "--state-dir", filepath.Join(dir, "new"), "-f", filepath.Join(dir, "missing.tgz")}, "missing.tgz"},
	} {
		if _, err := runCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
