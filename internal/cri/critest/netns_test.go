package critest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestSweepNetNS: a test namespace whose process died is deleted, one of
// a live process is kept (root only).
func TestSweepNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone := fmt.Sprintf("%s%d-sweeptest", netnsPrefix, dead.Process.Pid)
	kept := fmt.Sprintf("%s%d-sweeptest", netnsPrefix, os.Getpid())
	for _, name := range []string{gone, kept} {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	}
	SweepNetNS(t)
	if _, err := os.Stat("/var/run/netns/" + gone); !os.IsNotExist(err) {
		t.Errorf("%s of a dead process: %v, want it deleted", gone, err)
	}
	if _, err := os.Stat("/var/run/netns/" + kept); err != nil {
		t.Errorf("%s of this process: %v, want it kept", kept, err)
	}
}
