package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"wharf.dev/wharf/internal/provider/ssh/hostctl"
	"wharf.dev/wharf/internal/testwait"
)

// lab is a set of test "machines": network namespaces on a bridge of
// their own, each running Debian's sshd with its own host key, all
// accepting one client key. The machines share this machine's file
// system (the provider's BaseDir keeps their hosts apart).
type lab struct {
	id       string
	gateway  string // the bridge's address: the service address
	machines []*machine
	key      []byte // the client's private key (OpenSSH PEM)
	known    []byte // known_hosts lines of every machine
	baseDir  string
}

type machine struct {
	ns, addr, dir string
	sshd          int // the listening sshd's pid
	kind          machineKind
}

// machineKind makes a machine unlike this one. The zero kind is this
// machine as it is: root logs in, no systemd, every package installed.
// Any other kind runs its sshd in a mount namespace of its own, where
// files bound over /etc and /usr/local/sbin make the difference.
type machineKind struct {
	// user logs in instead of root; the machine gives it password-less sudo.
	user string
	// systemd: the machine runs systemd (a systemctl that records its
	// calls and runs units' ExecStart detached; /run/systemd/system).
	systemd bool
	// missing packages, which dpkg-query reports not installed and an
	// apt-get that records its calls "installs".
	missing []string
}

func (k machineKind) plain() bool { return k.user == "" && !k.systemd && len(k.missing) == 0 }

// needLab skips unless a lab can be made here.
func needLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, sshd)")
	}
	for _, bin := range []string{"/usr/sbin/sshd", "ip", "nsenter", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (Debian openssh-server, iproute2, util-linux, iptables: hack/install-deps.sh)", bin)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
		t.Skip("needs the cgroup v1 freezer")
	}
}

// newLab makes n machines; everything goes when the test ends, failed or not.
func newLab(t testing.TB, n int) *lab {
	t.Helper()
	return newLabOf(t, make([]machineKind, n)...)
}

// newLabOf makes a machine of each kind.
func newLabOf(t testing.TB, kinds ...machineKind) *lab {
	t.Helper()
	needLab(t)
	b := make([]byte, 3)
	rand.Read(b)
	l := &lab{id: hex.EncodeToString(b)}
	l.baseDir = "/tmp/wsh-" + l.id // short: containerd's socket path must stay under 108 bytes
	prefix := freeSubnet(t)
	l.gateway = prefix + "1"
	bridge := "wshb" + l.id
	sh(t, "ip", "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	sh(t, "ip", "addr", "add", l.gateway+"/24", "dev", bridge)
	sh(t, "ip", "link", "set", bridge, "up")
	// With br_netfilter, bridged traffic crosses FORWARD, which a Docker
	// machine drops by default.
	rule := []string{"FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"}
	sh(t, "iptables", append([]string{"-I"}, rule...)...)
	t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l.key = pemKey(t, priv)
	clientPub, _ := ssh.NewPublicKey(pub)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation dir
		t.Fatal(err)
	}
	for i, kind := range kinds {
		m := &machine{ns: fmt.Sprintf("wsh-%s-%d", l.id, i), addr: prefix + strconv.Itoa(10+i), dir: t.TempDir(), kind: kind}
		l.addMachine(t, m, bridge, clientPub)
		l.machines = append(l.machines, m)
	}
	// Registered last, so it runs first: whatever a failed test left of
	// its hosts goes before the machines do.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join(l.baseDir, "*", "*"))
		for _, d := range dirs {
			key, name := filepath.Base(filepath.Dir(d)), filepath.Base(d)
			if err := hostctl.Cleanup(context.Background(), d, "/wharf/"+key+"/"+name); err != nil {
				t.Errorf("lab cleanup of %s: %v", d, err)
			}
		}
		os.RemoveAll(l.baseDir)
	})
	return l
}

// addMachine makes a namespace on the bridge and starts sshd in it.
func (l *lab) addMachine(t testing.TB, m *machine, bridge string, clientPub ssh.PublicKey) {
	t.Helper()
	sh(t, "ip", "netns", "add", m.ns)
	t.Cleanup(func() {
		killNetns(m.ns)
		exec.Command("ip", "netns", "del", m.ns).Run()
	})
	veth := fmt.Sprintf("wshv%s%d", l.id, len(l.machines))
	sh(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", m.ns)
	sh(t, "ip", "link", "set", veth, "master", bridge, "up")
	sh(t, "ip", "-n", m.ns, "addr", "add", m.addr+"/24", "dev", "eth0")
	sh(t, "ip", "-n", m.ns, "link", "set", "eth0", "up")
	sh(t, "ip", "-n", m.ns, "link", "set", "lo", "up")
	sh(t, "ip", "-n", m.ns, "route", "add", "default", "via", l.gateway)

	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey := filepath.Join(m.dir, "ssh_host_ed25519_key")
	write(t, hostKey, pemKey(t, hostPriv))
	keys := filepath.Join(m.dir, "authorized_keys")
	var setup string
	if !m.kind.plain() {
		keys, setup = m.makeKind(t)
	}
	write(t, keys, ssh.MarshalAuthorizedKey(clientPub))
	os.Chmod(keys, 0o644) // a user reads its own keys
	config := filepath.Join(m.dir, "sshd_config")
	write(t, config, []byte(fmt.Sprintf(`ListenAddress %s:22
HostKey %s
AuthorizedKeysFile %s
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 64
MaxStartups 64
LogLevel ERROR
`, m.addr, hostKey, keys)))
	signer, _ := ssh.NewSignerFromKey(hostPriv)
	l.known = append(l.known, knownhosts.Line([]string{m.addr}, signer.PublicKey())+"\n"...)

	logf, err := os.Create(filepath.Join(m.dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--net=/var/run/netns/" + m.ns, "/usr/sbin/sshd", "-D", "-e", "-f", config}
	if setup != "" { // unshare and sh exec, so the pid stays sshd's
		args = []string{"--net=/var/run/netns/" + m.ns, "unshare", "--mount", "--propagation", "private",
			"sh", "-ec", setup + "exec /usr/sbin/sshd -D -e -f " + config}
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	m.sshd = cmd.Process.Pid // nsenter execs sshd
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			t.Logf("sshd of %s:\n%s", m.addr, data)
		}
	})
	testwait.For(t, "sshd on "+m.addr+" to listen", func() (bool, string) {
		c, err := net.DialTimeout("tcp", m.addr+":22", time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// config is a provider config for the lab's machines.
func (l *lab) config(t testing.TB, stateDir, binary string) Config {
	var hosts []string
	for _, m := range l.machines {
		hosts = append(hosts, m.addr)
	}
	return Config{
		Hosts: hosts, Key: l.key, KnownHosts: l.known, Binary: binary,
		StateDir: stateDir, BaseDir: l.baseDir, ServiceAddress: l.gateway, Logger: testLogger(t),
	}
}

// machineOf returns the machine at addr.
func (l *lab) machineOf(addr string) *machine {
	for _, m := range l.machines {
		if m.addr == addr {
			return m
		}
	}
	return nil
}

// processes lists the pids in the machine's namespace other than sshd's.
func (m *machine) processes() []string {
	out, _ := exec.Command("ip", "netns", "pids", m.ns).Output()
	var pids []string
	for _, pid := range strings.Fields(string(out)) {
		if exe, _ := os.Readlink("/proc/" + pid + "/exe"); exe != "/usr/sbin/sshd" {
			pids = append(pids, pid+"("+exe+")")
		}
	}
	return pids
}

// netTraces lists what a host left in the machine's network namespace:
// links other than lo and eth0, iptables rules naming wharf, routes of
// the routes package (protocol 87).
func (m *machine) netTraces() []string {
	var out []string
	links, _ := exec.Command("ip", "-n", m.ns, "-o", "link", "show").Output()
	for _, l := range strings.Split(strings.TrimSpace(string(links)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if name != "lo" && name != "eth0" {
				out = append(out, "link "+name)
			}
		}
	}
	rules, _ := exec.Command("nsenter", "--net=/var/run/netns/"+m.ns, "iptables-save").Output()
	for _, l := range strings.Split(string(rules), "\n") {
		if strings.HasPrefix(l, "-A") && strings.Contains(l, "wharf") {
			out = append(out, "iptables "+l)
		}
	}
	routes, _ := exec.Command("ip", "-n", m.ns, "route", "show", "proto", "87").Output()
	for _, l := range strings.Split(strings.TrimSpace(string(routes)), "\n") {
		if l != "" {
			out = append(out, "route "+l)
		}
	}
	return out
}

// cutConnections kills the sshd processes serving connections (not the
// listener): every client connection to the machine breaks.
func (m *machine) cutConnections() int {
	out, _ := exec.Command("ip", "netns", "pids", m.ns).Output()
	n := 0
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		if exe, _ := os.Readlink("/proc/" + f + "/exe"); exe == "/usr/sbin/sshd" && pid != m.sshd {
			syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// freeSubnet picks a 10.124.x.0/24 that no route on this machine uses.
func freeSubnet(t testing.TB) string {
	routes, _ := exec.Command("ip", "-4", "route").Output()
	b := make([]byte, 1)
	for range 50 {
		rand.Read(b)
		prefix := fmt.Sprintf("10.124.%d.", 1+int(b[0])%250)
		if !strings.Contains(string(routes), prefix+"0/24") {
			return prefix
		}
	}
	t.Fatal("no free 10.124.x.0/24")
	return ""
}

func killNetns(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func pemKey(t testing.TB, priv ed25519.PrivateKey) []byte {
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func sh(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
