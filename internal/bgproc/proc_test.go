package bgproc

import (
	"os"
	"path/filepath"
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
