// Package cni writes the CNI network configuration of a node's pods and
// keeps the iptables rules that network needs: FORWARD accept rules (a
// Docker-installed machine drops forwarded traffic, bridged traffic
// included when bridge-nf-call-iptables=1), one masquerade rule for
// traffic leaving the cluster, and the hostPorts' DNAT chains.
//
// The conflist names one plugin, wharf-cni (package cniplugin), which
// forwards each request to the agent's pod network (package podnet): a
// Linux bridge per node, addresses from the node's pod CIDR, hostPorts.
// containerd's CRI plugin adds the loopback interface by itself, with
// wharf-cni installed as "loopback" too.
package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"wharf.dev/wharf/internal/network/cniplugin"
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
	// Socket is the agent's pod network socket the plugin forwards to.
	Socket string
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
		Plugins []cniplugin.NetConf `json:"plugins"`
	}
	if json.Unmarshal(data, &c) != nil {
		return opts
	}
	for _, p := range c.Plugins {
		if p.Type == cniplugin.Type {
			opts.Bridge, opts.PodCIDR, opts.Socket = p.Bridge, p.Subnet, p.Socket
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
	if opts.Socket == "" || !filepath.IsAbs(opts.Socket) {
		return nil, fmt.Errorf("cni conflist: agent socket %q must be an absolute path", opts.Socket)
	}
	if opts.Bridge == "" {
		opts.Bridge = DefaultBridge
	}
	if len(opts.Bridge) > 15 {
		return nil, fmt.Errorf("cni conflist: bridge name %q is longer than 15 bytes", opts.Bridge)
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       NetworkName,
		"plugins": []any{map[string]any{
			"type":         cniplugin.Type,
			"socket":       opts.Socket,
			"bridge":       opts.Bridge,
			"subnet":       prefix.Masked().String(),
			"capabilities": map[string]bool{"portMappings": true},
		}},
	}
	// encoding/json sorts map keys: the same options give the same bytes.
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cni conflist: %w", err)
	}
	return append(data, '\n'), nil
}
