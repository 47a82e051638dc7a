package bgproc

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestProcStartStopAndStalePidFiles(t *testing.T) {
	dir := t.TempDir()
	p := Proc{Name: "sleep", PidFile: filepath.Join(dir, "run", "sleep.pid"), LogFile: filepath.Join(dir, "log", "sleep.log")}
	if p.Pid() != 0 {
		t.Fatal("no pid file, yet a pid")
	}
	pid, err := p.Start("/bin/sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Pid(); got != pid {
		t.Fatalf("pid() = %d, want %d", got, pid)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Pid() != 0 {
		t.Fatal("still alive after stop")
	}
	if _, err := os.Stat(p.PidFile); !os.IsNotExist(err) {
		t.Fatal("pid file left after stop")
	}
	// A pid file naming a dead or foreign process is ignored.
	os.WriteFile(p.PidFile, []byte("1\n"), 0o644) // init: alive, but not ours
	if p.Pid() != 0 {
		t.Fatal("pid 1 taken for ours")
	}
}

// TestStartDoesNotPassInheritedFiles: a file this process holds without
// close-on-exec (as one inherited from a caller) is not open in the
// background process.
func TestStartDoesNotPassInheritedFiles(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd())) // a dup is not close-on-exec
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	p := Proc{Name: "sleep", PidFile: filepath.Join(dir, "sleep.pid"), LogFile: filepath.Join(dir, "sleep.log")}
	pid, err := p.Start("/bin/sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	if _, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err == nil {
		t.Errorf("the background process holds fd %d of its caller", fd)
	}
}
