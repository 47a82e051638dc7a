package critest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// criLogLine is the CRI log format: RFC 3339 nano timestamp, stream, tag
// (F full line, P partial), content.
var criLogLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([FP]) (.*)$`)

// TestContainerLogs: a container's output lands in its log file in CRI
// format, and after the file is rotated ReopenContainerLog makes the
// runtime write a new one.
func TestContainerLogs(t *testing.T, env *Env) {
	if !env.Logs {
		t.Skip("the runtime writes no log files")
	}
	ctx := testContext(t)
	p := newPod(t, env, "logs", nil)
	cid := p.start(t, "talker", []string{"sh", "-c",
		`echo start; echo to-stderr >&2; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done`})
	path := filepath.Join(p.config.LogDirectory, "talker", "0.log")
	if st := containerState(t, env, cid); st.LogPath != path {
		t.Errorf("status log path %q, want %q", st.LogPath, path)
	}

	eventually(t, "log file has both streams", 30*time.Second, func() error {
		lines, err := readCRILog(path)
		if err != nil {
			return err
		}
		if !contains(lines, "stdout F start") || !contains(lines, "stderr F to-stderr") {
			return fmt.Errorf("lines %q", lines)
		}
		return nil
	})

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := env.Runtime.ReopenContainerLog(ctx, cid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new log file after reopen", 30*time.Second, func() error {
		lines, err := readCRILog(path)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "stdout F line ") {
				return nil
			}
		}
		return fmt.Errorf("lines %q", lines)
	})
	if _, err := readCRILog(rotated); err != nil {
		t.Errorf("rotated file: %v", err)
	}

	if err := env.Runtime.StopContainer(ctx, cid, 0); err != nil {
		t.Fatal(err)
	}
	if err := env.Runtime.ReopenContainerLog(ctx, cid); err == nil {
		t.Errorf("ReopenContainerLog of a stopped container: no error")
	}
}

// readCRILog checks every line of a CRI log file and returns them without
// their timestamps ("stdout F text").
func readCRILog(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		m := criLogLine.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("%s: not a CRI log line: %q", path, l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			return nil, fmt.Errorf("%s: timestamp of %q: %w", path, l, err)
		}
		lines = append(lines, m[2]+" "+m[3]+" "+m[4])
	}
	return lines, nil
}
