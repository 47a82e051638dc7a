package pods

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestLogRotation grows a running container's log past the limit: each
// pass renames it and asks the runtime to reopen it, at most
// ContainerLogMaxFiles files remain, the newest kept, and a failed
// reopen gives the file its name back.
func TestLogRotation(t *testing.T) {
	h := newHarness(t)
	h.configure = func(c *Config) { c.ContainerLogMaxSize, c.ContainerLogMaxFiles = 100, 3 }
	h.start()
	pod := testPod("chatty")
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	log := filepath.Join(h.dir, "state", "logs", "default_chatty_uid-chatty", "app", "0.log")
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(n int) {
		t.Helper()
		if err := os.WriteFile(log, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reopens := func() int {
		h.rt.Lock()
		defer h.rt.Unlock()
		n := 0
		for _, c := range h.rt.Called {
			if c == "ReopenContainerLog" {
				n++
			}
		}
		return n
	}
	ctx := context.Background()

	write(50)
	h.m.rotateLogs(ctx)
	if _, err := os.Stat(log); err != nil || reopens() != 0 {
		t.Fatalf("a log under the limit was rotated: %v, %d reopens", err, reopens())
	}

	var newest string
	for i := range 4 {
		write(200 + i)
		h.clock.Step(time.Second)
		h.m.rotateLogs(ctx)
		rotated, err := rotatedLogs(log)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pass %d: the current log was not renamed: %v", i, err)
		}
		if want := min(i+1, 2); len(rotated) != want {
			t.Errorf("pass %d: %d rotated files %v, want %d", i, len(rotated), rotated, want)
		}
		if len(rotated) > 0 {
			newest = rotated[len(rotated)-1]
		}
	}
	if fi, err := os.Stat(newest); err != nil || fi.Size() != 203 {
		t.Errorf("newest rotated file %s: %v, want the last 203 bytes written", newest, err)
	}
	if reopens() != 4 {
		t.Errorf("%d reopens, want 4", reopens())
	}

	write(300)
	h.rt.InjectError("ReopenContainerLog", errors.New("runtime down"))
	before, _ := rotatedLogs(log)
	h.m.rotateLogs(ctx)
	after, _ := rotatedLogs(log)
	if fi, err := os.Stat(log); err != nil || fi.Size() != 300 {
		t.Errorf("after a failed reopen the log is not back at its path: %v", err)
	}
	if len(after) != len(before) || !slices.Equal(after, before[len(before)-len(after):]) {
		t.Errorf("rotated files %v after a failed reopen, had %v", after, before)
	}
}
