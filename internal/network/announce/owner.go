package announce

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// Owner returns which of candidates owns addr, "" when there is none, by
// rendezvous (highest random weight) hashing: each candidate's weight for
// an address is a hash of both, and the heaviest owns it. Every node
// computes the same owner from the same candidates in any order, and
// when a candidate goes only its addresses move (to their second
// heaviest). The hash is fixed (SHA-256), not seeded: nodes running
// different builds during an upgrade must agree too.
func Owner(addr netip.Addr, candidates []string) string {
	var best string
	var bestWeight uint64
	for i, c := range candidates {
		w := weight(addr, c)
		if i == 0 || w > bestWeight || (w == bestWeight && c < best) {
			best, bestWeight = c, w
		}
	}
	return best
}

func weight(addr netip.Addr, node string) uint64 {
	b, _ := addr.Unmap().WithZone("").MarshalBinary()
	sum := sha256.Sum256(append(append(b, 0), node...))
	return binary.BigEndian.Uint64(sum[:8])
}
