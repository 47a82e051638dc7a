package ssh

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/ssh/hostctl"
)

// Packages are the Debian packages a host needs on its machine.
var Packages = []string{"containerd", "runc", "crun", "iptables"}

// prelude starts every script: a PATH with the sbin directories (a
// non-root user's sudo may lack them) and alive, which tells whether the
// host's wharf process runs (its pid file names a live process executing
// the host's binary; a replaced binary shows as "… (deleted)").
func prelude(l layout) string {
	return fmt.Sprintf(`PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
alive() { p=$(cat %[1]s 2>/dev/null) && [ -n "$p" ] || return 1
  case "$(readlink /proc/$p/exe 2>/dev/null)" in %[2]s|"%[2]s (deleted)") return 0;; esac; return 1; }
systemd() { [ -f /etc/systemd/system/%[3]s ] && [ -d /run/systemd/system ]; }
`, l.ChildPid(), l.Binary(), l.Unit)
}

// probeScript reports, one key=value a line: the status of each package,
// the checksums of the host's binary and plugin, the machine's init and
// whether the host's process runs.
func probeScript(l layout) string {
	return prelude(l) + fmt.Sprintf(`dpkg-query -W -f='package=${Package} ${Status}\n' %[1]s 2>/dev/null
if [ -f %[2]s ] && [ -x %[3]s ]; then echo "sum=$(cat %[2]s)"; else echo "sum=$(sha256sum %[3]s 2>/dev/null | cut -d' ' -f1)"; fi
if [ -f %[4]s ] && [ -x %[5]s ]; then echo "pluginsum=$(cat %[4]s)"; fi
case "$(systemctl is-system-running 2>/dev/null)" in
  running|degraded|starting|initializing|maintenance) echo init=systemd;;
  *) echo init=process;;
esac
alive && echo running=yes || echo running=no
`, strings.Join(Packages, " "), sumFile(l.Binary()), l.Binary(), sumFile(l.Plugin()), l.Plugin())
}

// sumFile keeps the checksum of a copied executable, so that a probe need
// not hash 100 MB each time. The file changes only through uploadScript,
// which removes the checksum first and writes it last.
func sumFile(path string) string { return path + ".sha256" }

type probe struct {
	missing   []string
	sum       string
	pluginSum string
	init      string // "systemd" or "process"
	running   bool
}

func parseProbe(out string) probe {
	var pr probe
	installed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "package":
			name, status, _ := strings.Cut(v, " ")
			installed[name] = status == "install ok installed"
		case "sum":
			pr.sum = strings.TrimSpace(v)
		case "pluginsum":
			pr.pluginSum = strings.TrimSpace(v)
		case "init":
			pr.init = strings.TrimSpace(v)
		case "running":
			pr.running = strings.TrimSpace(v) == "yes"
		}
	}
	for _, p := range Packages {
		if !installed[p] {
			pr.missing = append(pr.missing, p)
		}
	}
	return pr
}

// installScript installs packages, updating the package lists only if
// the first try fails (a fresh machine may have none).
func installScript(pkgs []string) string {
	list := strings.Join(pkgs, " ")
	return fmt.Sprintf(`export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends %[1]s; }
install >/dev/null || { apt-get update -q >/dev/null && install >/dev/null; } || exit 1
# The Debian package starts a system containerd: wharf runs its own per host.
case " %[1]s " in *" containerd "*)
  [ -d /run/systemd/system ] && systemctl disable --now containerd >/dev/null 2>&1;;
esac
exit 0
`, list)
}

// uploadScript receives an executable (the binary or the plugin) on stdin
// and moves it to target only once its checksum matches: a dropped
// connection must not leave half a binary that a restart would run.
func uploadScript(l layout, target, sum string) string {
	tmp := target + ".tmp"
	return fmt.Sprintf(`set -e
umask 022
mkdir -p %[1]s
chmod 0700 %[2]s
cat > %[3]s
echo "%[4]s  %[3]s" | sha256sum -c --status - || { rm -f %[3]s; echo "checksum mismatch after upload" >&2; exit 1; }
chmod 0755 %[3]s
rm -f %[6]s
mv -f %[3]s %[5]s
echo %[4]s > %[6]s
`, path.Dir(target), l.Dir, tmp, sum, target, sumFile(target))
}

// startScript unpacks the host's files (a tar on stdin) and starts its
// process: a systemd unit, or a supervisor in its own session. It returns
// once the process runs.
func startScript(l layout, init, unit string) string {
	var start string
	if init == "systemd" {
		start = fmt.Sprintf(`printf '%%s' %[1]s > /etc/systemd/system/%[2]s
systemctl daemon-reload
systemctl enable %[2]s >/dev/null 2>&1
systemctl start %[2]s
`, shq(unit), l.Unit)
	} else {
		start = fmt.Sprintf("%s hostctl supervise --detach --dir %s\n", l.Binary(), l.Dir)
	}
	return prelude(l) + fmt.Sprintf(`set -e
(umask 077; mkdir -p %[1]s; tar -x -f - -C %[1]s)
%[2]si=0
while ! alive; do
  i=$((i+1)); [ $i -le 150 ] || { echo "no wharf process after 15s; log:" >&2; tail -c 800 %[3]s >&2; exit 1; }
  sleep 0.1
done
`, l.Dir, start, l.Log())
}

// powerOffScript kills everything of the host at once; its files stay.
// A unit is stopped first, or systemd would restart it.
func powerOffScript(l layout) string {
	return prelude(l) + fmt.Sprintf(`if systemd; then systemctl kill --signal=SIGKILL %[1]s 2>/dev/null; systemctl stop %[1]s 2>/dev/null; fi
if [ -x %[2]s ]; then exec %[2]s hostctl poweroff --dir %[3]s --cgroup-root %[4]s; fi
`, l.Unit, l.Binary(), l.Dir, l.CgroupRoot)
}

// deleteScript removes every trace of the host. Without a binary nothing
// of the host can have run, so its directory is all there is to remove.
func deleteScript(l layout) string {
	return prelude(l) + fmt.Sprintf(`if systemd; then
  systemctl kill --signal=SIGKILL %[1]s 2>/dev/null; systemctl disable --now %[1]s >/dev/null 2>&1
fi
if [ -f /etc/systemd/system/%[1]s ]; then
  rm -f /etc/systemd/system/%[1]s
  [ -d /run/systemd/system ] && { systemctl daemon-reload; systemctl reset-failed %[1]s 2>/dev/null; }
fi
if [ -x %[2]s ]; then exec %[2]s hostctl cleanup --dir %[3]s --cgroup-root %[4]s; fi
rm -rf %[3]s
rmdir %[5]s %[6]s 2>/dev/null
exit 0
`, l.Unit, l.Binary(), l.Dir, l.CgroupRoot, path.Dir(l.Dir), path.Dir(path.Dir(l.Dir)))
}

// unitFile is the systemd unit of a host: the supervisor, so that the
// process runs in the host's cgroup as it does without systemd, and
// systemd restarts the supervisor itself (and starts it at boot).
func unitFile(l layout, spec provider.HostSpec) string {
	return fmt.Sprintf(`[Unit]
Description=Wharf host %[1]s of cluster %[2]s/%[3]s
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=%[4]s hostctl supervise --dir %[5]s
Restart=always
RestartSec=2
# The supervisor stops the wharf process itself; an agent leaves
# containerd and the pods running, which a restart must not kill.
KillMode=process
TimeoutStopSec=30
StandardOutput=append:%[6]s
StandardError=append:%[6]s

[Install]
WantedBy=multi-user.target
`, spec.Name, spec.Cluster.Namespace, spec.Cluster.Name, l.Binary(), l.Dir, l.Log())
}

// hostTar is what startScript unpacks into the host's directory:
// host.json (what the supervisor runs) and the spec's files below the
// state dir, every file 0600 and directory 0700.
func hostTar(spec provider.HostSpec, l layout, address string) ([]byte, error) {
	args := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		a = strings.ReplaceAll(a, "$(HOST_IP)", address)
		args[i] = strings.ReplaceAll(a, "$(STATE_DIR)", l.State())
	}
	cfg, err := json.MarshalIndent(hostctl.Config{Args: args, CgroupRoot: l.CgroupRoot, CPU: spec.CPU, Memory: spec.Memory}, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"host.json": cfg}
	for name, data := range spec.Files {
		clean := path.Clean(name)
		if path.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
			return nil, fmt.Errorf("file %q: not a relative path below the state dir", name)
		}
		files["state/"+clean] = data
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	now := time.Now()
	for _, n := range names {
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList) // a parent sorts before its children
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o700, ModTime: now}); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o600, Size: int64(len(files[n])), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// binary is a local executable (wharf, wharf-cni) and its checksum,
// computed once per version of the file.
type binary struct {
	path  string
	mu    sync.Mutex
	sum   string
	size  int64
	mtime time.Time
}

func (b *binary) checksum() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fi, err := os.Stat(b.path)
	if err != nil {
		return "", fmt.Errorf("checksum of %s: %w", b.path, err)
	}
	if b.sum != "" && fi.Size() == b.size && fi.ModTime().Equal(b.mtime) {
		return b.sum, nil
	}
	f, err := os.Open(b.path)
	if err != nil {
		return "", fmt.Errorf("checksum of %s: %w", b.path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum of %s: %w", b.path, err)
	}
	b.sum, b.size, b.mtime = hex.EncodeToString(h.Sum(nil)), fi.Size(), fi.ModTime()
	return b.sum, nil
}
