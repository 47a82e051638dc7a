package up

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
	{"iptables", "iptables"},
	{"nft", "nftables"}, // the agent's service proxy
	{"nsenter", "util-linux"},
}

// preflight returns one line saying what to do when this machine cannot
// run a cluster, or nil.
func preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("wharf up needs root: it starts containerd and configures networking (run it with sudo)")
	}
	return missingError(missingPackages(onThisMachine))
}

// onThisMachine: an absolute path exists, or a command is on PATH.
func onThisMachine(path string) bool {
	if strings.HasPrefix(path, "/") {
		_, err := os.Stat(path)
		return err == nil
	}
	_, err := exec.LookPath(path)
	return err == nil
}

// missingPackages lists, once each, the packages of the requirements not found.
func missingPackages(found func(string) bool) []string {
	var pkgs []string
	seen := map[string]bool{}
	for _, r := range requirements {
		if !found(r.path) && !seen[r.pkg] {
			seen[r.pkg] = true
			pkgs = append(pkgs, r.pkg)
		}
	}
	return pkgs
}

func missingError(pkgs []string) error {
	if len(pkgs) == 0 {
		return nil
	}
	return fmt.Errorf("missing Debian packages %s: run apt-get install -y %s (or hack/install-deps.sh)", strings.Join(pkgs, ", "), strings.Join(pkgs, " "))
}
