//go:build integration

// Package integration tests whole Wharf servers as separate processes,
// driven by client-go and the real kubectl. Run with: go test -tags integration ./test/...
package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/testserver"
)

var wharfBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wharf-integration")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wharfBin = filepath.Join(dir, "wharf")
	build := exec.Command("go", "build", "-o", wharfBin, "wharf.dev/wharf/cmd/wharf")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wharf:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serverProc is a `wharf server` child process.
type serverProc struct {
	t       *testing.T
	dataDir string
	listen  string
	cmd     *exec.Cmd
	log     *os.File
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer runs `wharf server` on dataDir and waits until it answers.
func startServer(t *testing.T, dataDir, listen string, extra ...string) *serverProc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dataDir+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--data-dir", dataDir, "--listen", listen}, extra...)
	cmd := exec.Command(wharfBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test binary, even when a timeout kills it
	// before its cleanups run (a server left behind would also keep the
	// caller's lock file open).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, dataDir: dataDir, listen: listen, cmd: cmd, log: logf}
	t.Cleanup(p.kill)
	up := false
	defer func() { // also when WaitFor fails the test
		if !up {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("server log:\n%s", out)
		}
	}()
	testserver.WaitFor(t, "the server to answer", 60*time.Second, func() (bool, error) {
		c, err := p.restConfig()
		if err != nil {
			return false, err
		}
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			return false, err
		}
		_, err = cs.Discovery().ServerVersion()
		return err == nil, err
	})
	up = true
	return p
}

func (p *serverProc) kubeconfig() string { return filepath.Join(p.dataDir, "admin.kubeconfig") }

func (p *serverProc) restConfig() (*rest.Config, error) {
	c, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig())
	if err != nil {
		return nil, err
	}
	c.QPS, c.Burst = -1, -1
	c.Timeout = 10 * time.Second
	return c, nil
}

func (p *serverProc) client() kubernetes.Interface {
	p.t.Helper()
	c, err := p.restConfig()
	if err != nil {
		p.t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(c)
}

// kill sends SIGKILL, as a power cut would, and waits for the process.
func (p *serverProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Wait()
	p.log.Close()
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
