package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"

	"wharf.dev/wharf/internal/network/netalloc"
)

// Where provider networks come from when none is asked for: the first
// free /24 of NetworkPool, DefaultNetwork first.
var (
	NetworkPool = netip.MustParsePrefix("10.123.0.0/16")
	poolBits    = 24
)

// Network is a provider network as its owner records it: the hosts' IPv4
// range and the bridge that carries it.
type Network struct {
	CIDR   string `json:"cidr"`
	Bridge string `json:"bridge"`
}

// BridgeFor is the bridge name of an owner: "wharf" and 8 hex digits of
// a hash of the owner, so a second service gets a bridge of its own.
func BridgeFor(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return "wharf" + hex.EncodeToString(sum[:4])
}

// ClaimNetwork returns the provider network recorded in file, or claims
// one for owner and records it there: cidr if given (refused, naming the
// holder, when anything else on the machine holds part of it), else the
// first free /24 of NetworkPool. Claiming makes the claim visible at once
// (cfg's provider creates the bridge with its address and the
// unreachable route) under the machine-wide allocation lock, so a second
// service starting at the same moment never picks the same range. cfg
// says where the provider keeps hosts; its Network, Bridge and Owner are
// set from the claim.
func ClaimNetwork(ctx context.Context, file, cidr string, cfg Config) (Network, error) {
	unlock, err := netalloc.Lock(ctx)
	if err != nil {
		return Network{}, err
	}
	defer unlock()
	n, err := readNetwork(file)
	switch {
	case err == nil:
		if cidr != "" && !samePrefix(cidr, n.CIDR) {
			return Network{}, fmt.Errorf("provider network %s asked for, but %s was claimed before (%s): purge to change it", cidr, n.CIDR, file)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return Network{}, err
	default:
		n = Network{Bridge: BridgeFor(cfg.Owner), CIDR: cidr}
		if cidr == "" {
			snap, err := netalloc.Scan()
			if err != nil {
				return Network{}, err
			}
			p, err := snap.Free(NetworkPool, poolBits, netip.MustParsePrefix(DefaultNetwork))
			if err != nil {
				return Network{}, fmt.Errorf("provider network: %w (give one with --provider-network)", err)
			}
			n.CIDR = p.String()
		}
	}
	cfg.Network, cfg.Bridge = n.CIDR, n.Bridge
	p, err := New(cfg)
	if err != nil {
		return Network{}, err
	}
	if err := p.ensureNetworkLocked(ctx); err != nil {
		return Network{}, err
	}
	data, _ := json.MarshalIndent(n, "", "  ")
	if err := writeFileAtomic(file, append(data, '\n')); err != nil {
		return Network{}, fmt.Errorf("record the provider network: %w", err)
	}
	return n, nil
}

// ReadNetwork returns the network recorded in file (fs.ErrNotExist if
// none was ever claimed there).
func ReadNetwork(file string) (Network, error) { return readNetwork(file) }

func readNetwork(file string) (Network, error) {
	var n Network
	data, err := os.ReadFile(file)
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(data, &n); err != nil {
		return n, fmt.Errorf("provider network %s: %w", file, err)
	}
	if _, err := netip.ParsePrefix(n.CIDR); err != nil || n.Bridge == "" {
		return n, fmt.Errorf("provider network %s: bad record %+v", file, n)
	}
	return n, nil
}

func samePrefix(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Masked() == pb.Masked()
}
