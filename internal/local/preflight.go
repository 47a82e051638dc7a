package local

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// requirement is something `wharf up` needs from the machine, and the
// Debian package that provides it.
type requirement struct {
	path, pkg string
}

var requirements = []requirement{
	{"containerd", "containerd"},
	{"runc", "runc"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/portmap", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
	{"iptables", "iptables"},
	{"nsenter", "util-linux"},
}

// preflight returns one line saying what to do when this machine cannot
// run a cluster, or nil.
func preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("wharf up needs root: it starts containerd and configures networking (run it with sudo)")
	}
	var pkgs []string
	seen := map[string]bool{}
	for _, r := range requirements {
		found := false
		if strings.HasPrefix(r.path, "/") {
			_, err := os.Stat(r.path)
			found = err == nil
		} else {
			_, err := exec.LookPath(r.path)
			found = err == nil
		}
		if !found && !seen[r.pkg] {
			seen[r.pkg] = true
			pkgs = append(pkgs, r.pkg)
		}
	}
	if len(pkgs) > 0 {
		return fmt.Errorf("missing Debian packages %s: run apt-get install -y %s (or hack/install-deps.sh)", strings.Join(pkgs, ", "), strings.Join(pkgs, " "))
	}
	return nil
}
