package testserver

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// KubectlDir is where the real kubectl releases are installed, one binary per minor.
const KubectlDir = "/usr/lib/google-cloud-sdk/bin"

// Kubectl returns the path of kubectl 1.<minor>, skipping the test when it is not installed.
func Kubectl(t testing.TB, minor string) string {
	t.Helper()
	p := filepath.Join(KubectlDir, "kubectl.1."+minor)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("kubectl 1.%s not installed at %s", minor, p)
	}
	return p
}

// KubectlRunner runs one kubectl release against one cluster, with its own
// HOME so that nothing of the machine's user leaks in.
type KubectlRunner struct {
	t          testing.TB
	bin        string
	kubeconfig string
	home       string
	// Dir is the working directory (relative manifest paths).
	Dir string
}

// NewKubectl returns a runner for kubectl 1.<minor> and a kubeconfig.
func NewKubectl(t testing.TB, minor, kubeconfig string) *KubectlRunner {
	return &KubectlRunner{t: t, bin: Kubectl(t, minor), kubeconfig: kubeconfig, home: t.TempDir()}
}

// Cmd returns the command for args, reading stdin if not empty.
func (k *KubectlRunner) Cmd(stdin string, args ...string) *exec.Cmd {
	cmd := exec.Command(k.bin, args...)
	cmd.Dir = k.Dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig, "HOME="+k.home)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd
}

// Run runs kubectl and fails the test unless it succeeds.
func (k *KubectlRunner) Run(args ...string) string {
	k.t.Helper()
	return k.RunIn("", args...)
}

// RunIn is Run with stdin.
func (k *KubectlRunner) RunIn(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.Cmd(stdin, args...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Eventually runs kubectl until its output matches re, within 90 s.
func (k *KubectlRunner) Eventually(re string, args ...string) string {
	k.t.Helper()
	var out []byte
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		out, _ = k.Cmd("", args...).CombinedOutput()
		if regexp.MustCompile(re).Match(out) {
			return string(out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	k.t.Fatalf("kubectl %s never matched %q; last output:\n%s", strings.Join(args, " "), re, out)
	return ""
}

// Contains fails the test for each wanted string out lacks.
func Contains(t testing.TB, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// WaitFor polls cond until it holds, failing the test after d. Tests
// wait for states this way, never by asserting on elapsed time.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after %s (last: %v)", what, d, last)
}

// Output collects what a running command writes, for a test to read
// while it runs: kubectl get -w, logs -f.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
