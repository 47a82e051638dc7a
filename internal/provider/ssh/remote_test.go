package ssh

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/ssh/hostctl"
)

func testLayout() layout {
	p := &Provider{cfg: Config{BaseDir: DefaultBaseDir}}
	return p.layoutOf(provider.ClusterRef{Namespace: "ns", Name: "demo", UID: "0123456789"}, "demo-node-0")
}

// TestScriptsParse checks every script's shell syntax (sh -n): they run
// only on machines, where a typo would show late.
func TestScriptsParse(t *testing.T) {
	l := testLayout()
	spec := provider.HostSpec{Cluster: provider.ClusterRef{Namespace: "ns", Name: "demo"}, Name: "demo-node-0"}
	scripts := map[string]string{
		"probe":          probeScript(l),
		"install":        installScript([]string{"containerd", "runc"}),
		"upload":         uploadScript(l, l.Plugin(), strings.Repeat("ab", 32)),
		"start process":  startScript(l, "process", unitFile(l, spec)),
		"start systemd":  startScript(l, "systemd", unitFile(l, spec)),
		"power off":      powerOffScript(l),
		"delete":         deleteScript(l),
		"liveness check": prelude(l) + "alive && echo yes || echo no\n",
	}
	for name, s := range scripts {
		if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s\n%s", name, err, out, s)
		}
	}
	if got := l.Dir; got != "/var/lib/wharf-host/demo-01234567/demo-node-0" {
		t.Errorf("host dir %q", got)
	}
	if !strings.Contains(unitFile(l, spec), "ExecStart="+l.Binary()+" hostctl supervise --dir "+l.Dir+"\n") {
		t.Errorf("unit file lacks the supervisor:\n%s", unitFile(l, spec))
	}
}

func TestParseProbe(t *testing.T) {
	got := parseProbe("package=containerd install ok installed\npackage=runc deinstall ok config-files\n" +
		"sum=abc\ninit=systemd\nrunning=yes\n")
	want := probe{missing: []string{"runc", "crun", "iptables"}, sum: "abc", init: "systemd", running: true}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(probe{})); diff != "" {
		t.Errorf("parseProbe (-want +got):\n%s", diff)
	}
}

func TestHostTar(t *testing.T) {
	l := testLayout()
	spec := provider.HostSpec{
		Args:   []string{"agent", "--node-ip", "$(HOST_IP)", "--state-dir=$(STATE_DIR)/agent"},
		Files:  map[string][]byte{"registry/ca.crt": []byte("ca"), "token": []byte("t")},
		CPU:    "2",
		Memory: "1Gi",
	}
	data, err := hostTar(spec, l, "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		entries[h.Name] = string(body)
		if want := int64(0o600); h.Typeflag == tar.TypeDir {
			if h.Mode != 0o700 {
				t.Errorf("%s: mode %o, want 700", h.Name, h.Mode)
			}
		} else if h.Mode != want {
			t.Errorf("%s: mode %o, want 600", h.Name, h.Mode)
		}
	}
	var cfg hostctl.Config
	if err := json.Unmarshal([]byte(entries["host.json"]), &cfg); err != nil {
		t.Fatal(err)
	}
	want := hostctl.Config{
		Args:       []string{"agent", "--node-ip", "10.0.0.5", "--state-dir=" + l.State() + "/agent"},
		CgroupRoot: "/wharf/demo-01234567/demo-node-0", CPU: "2", Memory: "1Gi",
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("host.json (-want +got):\n%s", diff)
	}
	if entries["state/registry/ca.crt"] != "ca" || entries["state/token"] != "t" || entries["state/registry/"] != "" {
		t.Errorf("tar entries: %v", entries)
	}
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", "."} {
		if _, err := hostTar(provider.HostSpec{Args: []string{"x"}, Files: map[string][]byte{bad: nil}}, l, "10.0.0.5"); err == nil {
			t.Errorf("file %q accepted", bad)
		}
	}
}

func TestMachineAddr(t *testing.T) {
	for in, want := range map[string][2]string{
		"10.0.0.1":      {"10.0.0.1:22", "10.0.0.1"},
		"10.0.0.1:2222": {"10.0.0.1:2222", "10.0.0.1"},
		"node-a":        {"node-a:22", "node-a"},
		"[fd00::1]:22":  {"[fd00::1]:22", "fd00::1"},
		"fd00::1":       {"[fd00::1]:22", "fd00::1"},
	} {
		dial, host := machineAddr(in)
		if dial != want[0] || host != want[1] {
			t.Errorf("machineAddr(%q) = %q, %q; want %q, %q", in, dial, host, want[0], want[1])
		}
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{"demo-node-0": true, "a.b": true, "": false, "Demo": false, "-a": false, "a b": false, "a/b": false, "a;b": false} {
		if validName(s) != want {
			t.Errorf("validName(%q) = %v", s, !want)
		}
	}
}

// TestClaims: concurrent claims from two stores over one directory (two
// providers, as two templates naming the same machines would have) never
// hand out a machine twice, and a released machine is taken again.
func TestClaims(t *testing.T) {
	dir := t.TempDir()
	a, _ := newStore(dir)
	b, _ := newStore(dir)
	machines := []string{"10.0.0.1", "10.0.0.2:22", "10.0.0.3"}
	c := provider.ClusterRef{Name: "c", UID: "u"}
	got := make([]record, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range got {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			got[i], _, errs[i] = s.claim(provider.HostSpec{Cluster: c, Name: "h" + string(rune('0'+i))}, machines, nil)
		})
	}
	wg.Wait()
	seen, failed := map[string]bool{}, 0
	for i, r := range got {
		if errs[i] != nil {
			failed++
			continue
		}
		if seen[normalize(r.Machine)] {
			t.Errorf("machine %s claimed twice", r.Machine)
		}
		seen[normalize(r.Machine)] = true
	}
	if failed != 1 {
		t.Errorf("%d claims failed, want 1 (3 machines, 4 hosts): %v", failed, errs)
	}
	// "10.0.0.2" is "10.0.0.2:22": taken.
	if _, _, err := a.claim(provider.HostSpec{Cluster: c, Name: "x"}, []string{"10.0.0.2"}, nil); err == nil {
		t.Error("10.0.0.2 handed out while 10.0.0.2:22 serves a host")
	}
	recs, _ := a.list(&c)
	if err := b.remove(c, recs[0].Name); err != nil {
		t.Fatal(err)
	}
	r, fresh, err := a.claim(provider.HostSpec{Cluster: c, Name: "again"}, machines, nil)
	if err != nil || !fresh || r.Machine != recs[0].Machine {
		t.Errorf("claim after release: %+v, %v; want machine %s", r, err, recs[0].Machine)
	}
	if _, err := os.Stat(filepath.Join(dir, "hosts", c.Key(), "again.json")); err != nil {
		t.Errorf("record: %v", err)
	}
}

func TestServiceAddressDefault(t *testing.T) {
	bin, _ := os.Executable()
	key := pemKey(t, ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	p, err := New(Config{Hosts: []string{"127.0.0.2:2222"}, Key: key, Binary: bin, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ServiceAddress(); got != "127.0.0.1" {
		t.Errorf("ServiceAddress() = %q, want 127.0.0.1 (the source address towards 127.0.0.2)", got)
	}
}

func TestNewRejects(t *testing.T) {
	bin, _ := os.Executable()
	for name, cfg := range map[string]Config{
		"no hosts":     {Binary: bin, StateDir: t.TempDir(), Key: nil},
		"bad key":      {Hosts: []string{"h"}, Binary: bin, StateDir: t.TempDir(), Key: []byte("nope")},
		"no binary":    {Hosts: []string{"h"}, Binary: "/nonexistent", StateDir: t.TempDir()},
		"bad base dir": {Hosts: []string{"h"}, Binary: bin, StateDir: t.TempDir(), BaseDir: "/var/lib/my host"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
