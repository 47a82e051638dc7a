package ssh

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/providertest"
	"wharf.dev/wharf/internal/testwait"
)

// testUID is the uid of a machineKind's user; nothing on this machine has it.
const testUID = 47110

// makeKind prepares what makes m a machine of its kind and returns the
// path of the authorized keys and the shell lines that set the machine
// up in its own mount namespace before sshd starts.
func (m *machine) makeKind(t testing.TB) (keys, setup string) {
	t.Helper()
	k := m.kind
	var lines []string
	// /run of its own: /run/systemd/system tells systemd runs, and
	// nothing the machine's sudo or systemctl leaves there is seen here.
	lines = append(lines, "mount -t tmpfs -o mode=755 tmpfs /run", "mkdir -p /run/sshd")
	bind := func(from, onto string) { lines = append(lines, fmt.Sprintf("mount --bind %s %s", from, onto)) }

	calls := filepath.Join(m.dir, "calls")
	sbin := filepath.Join(m.dir, "sbin")
	mkdir(t, sbin, 0o755)
	record := fmt.Sprintf(`echo "$(id -u) ${SUDO_USER:-} $(basename "$0") $*" >> %s`, calls)
	if len(k.missing) > 0 {
		var seds []string
		for _, p := range k.missing {
			seds = append(seds, fmt.Sprintf(`-e 's/^package=%s .*/package=%s unknown ok not-installed/'`, p, p))
		}
		script(t, filepath.Join(sbin, "dpkg-query"), "/usr/bin/dpkg-query \"$@\" | sed "+strings.Join(seds, " "))
		script(t, filepath.Join(sbin, "apt-get"), record)
	}
	if k.systemd {
		units := filepath.Join(m.dir, "units")
		mkdir(t, units, 0o755)
		state := filepath.Join(m.dir, "systemd")
		mkdir(t, state, 0o755)
		// Units run detached; a unit's pid file is its "cgroup". Real
		// systemctl kill signals the whole cgroup; the scripts do not
		// rely on that (hostctl poweroff kills the host's cgroup).
		script(t, filepath.Join(sbin, "systemctl"), record+fmt.Sprintf(`
state=%s
unit() { f=/etc/systemd/system/$1; [ -f "$f" ] || { echo "Unit $1 not found." >&2; exit 5; }; }
stop() { p=$(cat $state/$1.pid 2>/dev/null) && kill -$2 $p 2>/dev/null; rm -f $state/$1.pid; }
case "$1" in
is-system-running) echo running;;
daemon-reload|reset-failed) ;;
enable) unit "$2";;
start) unit "$2"
  cmd=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/$2)
  log=$(sed -n 's/^StandardOutput=append://p' /etc/systemd/system/$2)
  setsid sh -c "exec $cmd" >>"$log" 2>&1 </dev/null &
  echo $! > $state/$2.pid;;
kill) [ "$2" = --signal=SIGKILL ] || exit 1; stop "$3" KILL;;
stop) stop "$2" TERM;;
disable) [ "$2" = --now ] && stop "$3" TERM;;
*) echo "systemctl of the test machine: $* is not known" >&2; exit 1;;
esac`, state))
		lines = append(lines, "mkdir -p /run/systemd/system")
		bind(units, "/etc/systemd/system")
	}
	bind(sbin, "/usr/local/sbin")

	keys = filepath.Join(m.dir, "authorized_keys")
	if k.user != "" {
		home, err := os.MkdirTemp("", "wsh-home-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(home) })
		os.Chmod(home, 0o755)
		os.Chown(home, testUID, testUID)
		keys = filepath.Join(home, "authorized_keys")
		for _, f := range []struct{ name, line string }{
			{"passwd", fmt.Sprintf("%s:x:%d:%d:wharf test:%s:/bin/sh\n", k.user, testUID, testUID, home)},
			{"group", fmt.Sprintf("%s:x:%d:\n", k.user, testUID)},
			{"shadow", k.user + ":*:20000:0:99999:7:::\n"},
		} {
			data, err := os.ReadFile("/etc/" + f.name)
			if err != nil {
				t.Fatal(err)
			}
			copy := filepath.Join(m.dir, f.name)
			write(t, copy, append(data, f.line...))
			os.Chmod(copy, 0o644)
			bind(copy, "/etc/"+f.name)
		}
		sudoers := filepath.Join(m.dir, "sudoers.d")
		mkdir(t, sudoers, 0o755)
		write(t, filepath.Join(sudoers, "wharf-test"), []byte(k.user+" ALL=(ALL:ALL) NOPASSWD: ALL\n"))
		os.Chmod(filepath.Join(sudoers, "wharf-test"), 0o440)
		bind(sudoers, "/etc/sudoers.d")
	}
	return keys, strings.Join(lines, "\n") + "\n"
}

func mkdir(t testing.TB, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, mode)
}

func script(t testing.TB, path, body string) {
	t.Helper()
	write(t, path, []byte("#!/bin/sh\n"+body+"\n"))
	os.Chmod(path, 0o755)
}

// TestSystemdSudoAndPackages: on a machine where a user other than root
// logs in (sudo), systemd runs and packages are missing, the provider
// installs the missing packages with apt-get, runs the host as a systemd
// unit that systemd-analyze finds sound, powers it off through systemd,
// starts it again, and on delete removes the unit with everything else.
func TestSystemdSudoAndPackages(t *testing.T) {
	for _, bin := range []string{"sudo", "systemd-analyze", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (hack/install-deps.sh)", bin)
		}
	}
	if _, err := os.Stat("/etc/systemd/system"); err != nil {
		t.Skip("needs /etc/systemd/system (Debian's systemd package) to bind the machine's units over")
	}
	kind := machineKind{user: "wharfop", systemd: true, missing: []string{"runc", "iptables"}}
	l := newLabOf(t, kind)
	m := l.machines[0]
	self, _ := os.Executable()
	cfg := l.config(t, t.TempDir(), self)
	cfg.User = kind.user
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "default", Name: "unit", UID: randHex(8)}
	spec := provider.HostSpec{Cluster: c, Name: "unit-node-0", Role: provider.RoleWorker,
		Args: []string{providertest.HelperCommand, "--name", "unit-node-0", "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"}}
	unit := p.layoutOf(c, spec.Name).Unit
	unitFile := filepath.Join(m.dir, "units", unit)
	// calls returns the recorded calls since the last one seen.
	seen := 0
	calls := func() []string {
		data, _ := os.ReadFile(filepath.Join(m.dir, "calls"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if lines[0] == "" {
			lines = nil
		}
		got := lines[seen:]
		seen = len(lines)
		return got
	}
	expect := func(step string, got []string, want ...string) {
		t.Helper()
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("%s: no call %q among %q", step, w, got)
			}
		}
	}
	// serving waits for the host's process, which systemd starts after
	// CreateHost returns, and checks it is the host's.
	serving := func(step string) {
		t.Helper()
		var resp *http.Response
		testwait.For(t, step+": the host to answer", func() (bool, string) {
			var err error
			resp, err = http.Get("http://" + m.addr + ":7777/report")
			return err == nil, fmt.Sprint(err)
		})
		defer resp.Body.Close()
		var rep providertest.Report
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || rep.Name != spec.Name {
			t.Fatalf("%s: report %+v (%v), want host %s", step, rep, err, spec.Name)
		}
	}

	h, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatalf("CreateHost: %v", err)
	}
	// Every call as root through the user's sudo.
	expect("create", calls(),
		"0 wharfop apt-get install -y -q --no-install-recommends runc iptables",
		"0 wharfop systemctl enable "+unit,
		"0 wharfop systemctl start "+unit)
	serving("create")
	if fi, err := os.Stat(h.StateDir); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the host's state dir %s: %v, want it made by root", h.StateDir, err)
	}
	out, err := exec.Command("systemd-analyze", "verify", unitFile).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}

	if err := p.PowerOff(ctx, c, spec.Name); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	expect("power off", calls(), "0 wharfop systemctl kill --signal=SIGKILL "+unit)
	if left := m.processes(); len(left) > 0 {
		t.Errorf("host off, but its machine runs %v", left)
	}
	if _, err := p.CreateHost(ctx, spec); err != nil {
		t.Fatalf("CreateHost after power off: %v", err)
	}
	expect("start again", calls(), "0 wharfop systemctl start "+unit)
	serving("start again")

	if err := p.DeleteHost(ctx, c, spec.Name); err != nil {
		t.Fatalf("DeleteHost: %v", err)
	}
	expect("delete", calls(), "0 wharfop systemctl disable --now "+unit)
	if _, err := os.Stat(unitFile); !os.IsNotExist(err) {
		t.Errorf("unit file after delete: %v, want it gone", err)
	}
	checkGone(t, l, h)
}
