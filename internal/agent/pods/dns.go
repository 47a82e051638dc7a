package pods

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Limits of resolv.conf that glibc and the kubelet enforce.
const (
	maxNameservers     = 3
	maxSearchDomains   = 32
	maxSearchListChars = 2048
)

// dnsSettings is the node's DNS configuration for pods.
type dnsSettings struct {
	clusterDNS    []string
	clusterDomain string
	// host is the node's resolv.conf, for dnsPolicy Default; empty: no
	// nameserver; nil leaves the runtime to copy the machine's file (only
	// unit tests leave it nil: the Manager never does).
	host *runtimeapi.DNSConfig
}

// dnsConfig is a pod's resolv.conf per its dnsPolicy and dnsConfig, as the
// kubelet computes it. ClusterFirst without cluster DNS servers falls back
// to the node's configuration, as the kubelet does.
func dnsConfig(pod *v1.Pod, s dnsSettings) *runtimeapi.DNSConfig {
	policy := pod.Spec.DNSPolicy
	switch {
	case policy == v1.DNSClusterFirstWithHostNet:
		policy = v1.DNSClusterFirst
	case policy == v1.DNSClusterFirst && pod.Spec.HostNetwork, policy == "":
		policy = v1.DNSDefault
		if !pod.Spec.HostNetwork {
			policy = v1.DNSClusterFirst
		}
	}
	if policy == v1.DNSClusterFirst && len(s.clusterDNS) == 0 {
		policy = v1.DNSDefault
	}
	var cfg *runtimeapi.DNSConfig
	switch policy {
	case v1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case v1.DNSClusterFirst:
		cfg = &runtimeapi.DNSConfig{
			Servers: append([]string{}, s.clusterDNS...),
			Options: []string{"ndots:5"},
		}
		if d := s.clusterDomain; d != "" {
			cfg.Searches = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		}
		if s.host != nil {
			cfg.Searches = append(cfg.Searches, s.host.Searches...)
		}
	default:
		if s.host == nil && pod.Spec.DNSConfig == nil {
			return nil
		}
		cfg = &runtimeapi.DNSConfig{}
		if s.host != nil {
			cfg.Servers = append(cfg.Servers, s.host.Servers...)
			cfg.Searches = append(cfg.Searches, s.host.Searches...)
			cfg.Options = append(cfg.Options, s.host.Options...)
		}
	}
	if pc := pod.Spec.DNSConfig; pc != nil {
		cfg.Servers = append(cfg.Servers, pc.Nameservers...)
		cfg.Searches = append(cfg.Searches, pc.Searches...)
		cfg.Options = mergeDNSOptions(cfg.Options, pc.Options)
	}
	cfg.Servers = dedup(cfg.Servers)
	if len(cfg.Servers) > maxNameservers {
		cfg.Servers = cfg.Servers[:maxNameservers]
	}
	cfg.Searches = trimSearches(dedup(cfg.Searches))
	if len(cfg.Servers)+len(cfg.Searches)+len(cfg.Options) == 0 {
		// containerd copies the machine's resolv.conf when the config
		// would write an empty file: a pod told "no nameserver" would get
		// the machine's resolver. glibc's own default keeps the file non-empty.
		cfg.Options = []string{"ndots:1"}
	}
	return cfg
}

// mergeDNSOptions lets the pod's options override same-named ones.
func mergeDNSOptions(base []string, extra []v1.PodDNSConfigOption) []string {
	var out []string
	names := map[string]int{}
	put := func(name, opt string) {
		if i, ok := names[name]; ok {
			out[i] = opt
			return
		}
		names[name] = len(out)
		out = append(out, opt)
	}
	for _, o := range base {
		put(strings.SplitN(o, ":", 2)[0], o)
	}
	for _, o := range extra {
		if o.Value != nil {
			put(o.Name, o.Name+":"+*o.Value)
		} else {
			put(o.Name, o.Name)
		}
	}
	return out
}

func dedup(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func trimSearches(ss []string) []string {
	if len(ss) > maxSearchDomains {
		ss = ss[:maxSearchDomains]
	}
	for len(strings.Join(ss, " ")) > maxSearchListChars {
		ss = ss[:len(ss)-1]
	}
	return ss
}

// ReadResolvConf parses a resolv.conf; no path or a missing file is an
// empty configuration (no nameserver).
func ReadResolvConf(path string) (*runtimeapi.DNSConfig, error) {
	if path == "" {
		return &runtimeapi.DNSConfig{}, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &runtimeapi.DNSConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	cfg := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			cfg.Servers = append(cfg.Servers, f[1])
		case "search", "domain":
			cfg.Searches = append(cfg.Searches[:0], f[1:]...)
		case "options":
			cfg.Options = append(cfg.Options, f[1:]...)
		}
	}
	return cfg, sc.Err()
}
