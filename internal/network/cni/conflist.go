// Package cni writes the CNI network configuration of a node's pods and
// keeps the iptables rules that network needs: one Linux bridge per node
// with host-local IPAM over the node's pod CIDR, portmap for hostPorts,
// and FORWARD accept rules (a Docker-installed machine drops forwarded
// traffic, bridged traffic included when bridge-nf-call-iptables=1).
//
// containerd's CRI plugin reads the conflist from its conf_dir and adds
// the loopback interface by itself.
package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

const (
	// NetworkName names the network in the conflist, in CNI result cache
	// file names and in the comments of the plugins' iptables rules.
	NetworkName = "wharf"
	// ConflistFile is the file WriteConflist writes in its directory.
	ConflistFile = "10-wharf.conflist"
	// DefaultBridge is the bridge's name when Options.Bridge is empty.
	DefaultBridge = "wharf0"
)

// Options describe a node's pod network.
type Options struct {
	// PodCIDR is the node's pod range (spec.podCIDR), e.g. 10.244.1.0/24;
	// the bridge gets its first address, pods the rest.
	PodCIDR string
	// Bridge defaults to DefaultBridge.
	Bridge string
	// MTU of the bridge and the pods' interfaces; 0 keeps the default.
	MTU int
	// IPAMDataDir is host-local's dataDir (the state dir's cni/ipam), so
	// that each host on a machine allocates on its own.
	IPAMDataDir string
}

// ReadConflist reads back the bridge and pod CIDR of the conflist that
// WriteConflist wrote in dir; what it cannot read is left empty (a node
// that never had a pod CIDR has no conflist).
func ReadConflist(dir string) Options {
	var opts Options
	data, err := os.ReadFile(filepath.Join(dir, ConflistFile))
	if err != nil {
		return opts
	}
	var c struct {
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPAM   struct {
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(data, &c) != nil {
		return opts
	}
	for _, p := range c.Plugins {
		if p.Type != "bridge" {
			continue
		}
		opts.Bridge = p.Bridge
		for _, r := range p.IPAM.Ranges {
			for _, s := range r {
				if opts.PodCIDR == "" {
					opts.PodCIDR = s.Subnet
				}
			}
		}
	}
	return opts
}

// WriteConflist writes dir/10-wharf.conflist for opts. The write is atomic
// (containerd watches the directory and must never read half a file) and
// skipped when the content is unchanged; changed says whether it wrote.
func WriteConflist(dir string, opts Options) (changed bool, err error) {
	data, err := Conflist(opts)
	if err != nil {
		return false, err
	}
	path := filepath.Join(dir, ConflistFile)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("cni conflist: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".wharf-conflist-*")
	if err != nil {
		return false, fmt.Errorf("cni conflist: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cni conflist: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cni conflist: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("cni conflist: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("cni conflist: %w", err)
	}
	return true, nil
}

// Conflist returns the conflist for opts (CNI 1.0.0).
func Conflist(opts Options) ([]byte, error) {
	prefix, err := netip.ParsePrefix(opts.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("cni conflist: pod CIDR: %w", err)
	}
	prefix = prefix.Masked()
	if opts.IPAMDataDir == "" || !filepath.IsAbs(opts.IPAMDataDir) {
		return nil, fmt.Errorf("cni conflist: IPAM data dir %q must be an absolute path", opts.IPAMDataDir)
	}
	if opts.Bridge == "" {
		opts.Bridge = DefaultBridge
	}
	if len(opts.Bridge) > 15 {
		return nil, fmt.Errorf("cni conflist: bridge name %q is longer than 15 bytes", opts.Bridge)
	}
	defaultRoute := "0.0.0.0/0"
	if prefix.Addr().Is6() {
		defaultRoute = "::/0"
	}
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      opts.Bridge,
		"isGateway":   true,
		"ipMasq":      false, // one rule per node instead: see Masquerade
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": prefix.String()}}},
			"routes":  []map[string]string{{"dst": defaultRoute}},
			"dataDir": opts.IPAMDataDir,
		},
	}
	if opts.MTU > 0 {
		bridge["mtu"] = opts.MTU
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       NetworkName,
		"plugins": []any{
			bridge,
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
				"snat":         true,
			},
		},
	}
	// encoding/json sorts map keys: the same options give the same bytes.
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cni conflist: %w", err)
	}
	return append(data, '\n'), nil
}
