package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/nftables/expr"
)

// TestNetlinkElement: elements in nft syntax become the kernel's bytes,
// each part of a concatenation padded to 4 bytes (the traffic test checks
// that the kernel reads them so).
func TestNetlinkElement(t *testing.T) {
	bucket := func(n uint32) []byte { return binary.NativeEndian.AppendUint32(nil, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		store      int
		key, value string
		wantKey    []byte
		wantVal    []byte
		wantChain  string
		wantErr    bool
	}{
		{storeServiceIPs, "10.96.0.10 . tcp . 80", "goto pick-3",
			[]byte{10, 96, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0}, nil, "pick-3", false},
		{storeNoEndpoints, "10.96.0.10 . sctp . 65535", "goto reject-chain",
			[]byte{10, 96, 0, 10, 132, 0, 0, 0, 255, 255, 0, 0}, nil, "reject-chain", false},
		{storeClusterIPs, "10.96.0.10", "", []byte{10, 96, 0, 10}, nil, "", false},
		{storeHairpin, "10.0.0.5 . 10.0.0.5", "", []byte{10, 0, 0, 5, 10, 0, 0, 5}, nil, "", false},
		{storeEndpointsUDP, "10.96.0.10 . 53 . 7", "10.0.0.5 . 5353",
			cat([]byte{10, 96, 0, 10, 0, 53, 0, 0}, bucket(7)), []byte{10, 0, 0, 5, 0x14, 0xe9, 0, 0}, "", false},
		{storeServiceIPs, "10.96.0.10 . tcp . 80", "jump pick-3", nil, nil, "", true},
		{storeServiceIPs, "10.96.0.10 . icmp . 80", "goto pick-3", nil, nil, "", true},
		{storeEndpointsTCP, "10.96.0.10 . 70000 . 0", "10.0.0.5 . 80", nil, nil, "", true},
		{storeEndpointsTCP, "10.96.0.10 . 80", "10.0.0.5 . 80", nil, nil, "", true},
		{storeClusterIPs, "fd00::1", "", nil, nil, "", true},
	} {
		s := newElemStore(storeDefs[tc.store])
		e, err := s.netlinkElement(tc.key, tc.value)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s %q: no error", s.name, tc.key)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", s.name, tc.key, err)
			continue
		}
		if !bytes.Equal(e.Key, tc.wantKey) || !bytes.Equal(e.Val, tc.wantVal) {
			t.Errorf("%s %q : %q = % x : % x, want % x : % x", s.name, tc.key, tc.value, e.Key, e.Val, tc.wantKey, tc.wantVal)
		}
		switch {
		case tc.wantChain == "" && e.VerdictData != nil:
			t.Errorf("%s %q: verdict %+v", s.name, tc.key, e.VerdictData)
		case tc.wantChain != "" && (e.VerdictData == nil || e.VerdictData.Kind != expr.VerdictGoto || e.VerdictData.Chain != tc.wantChain):
			t.Errorf("%s %q: verdict %+v, want goto %s", s.name, tc.key, e.VerdictData, tc.wantChain)
		}
	}
}

// FuzzNetlinkElement: any text is encoded as 4 bytes a part or refused.
func FuzzNetlinkElement(f *testing.F) {
	f.Add("10.96.0.10 . 80 . 1", "10.0.0.5 . 8080")
	f.Add("10.96.0.10 . tcp . 80", "goto pick-1")
	f.Fuzz(func(t *testing.T, key, value string) {
		for i := range storeDefs {
			s := newElemStore(storeDefs[i])
			e, err := s.netlinkElement(key, value)
			if err != nil {
				continue
			}
			if len(e.Key) != 4*len(s.key) || (e.Val != nil && len(e.Val) != 4*len(s.data)) {
				t.Errorf("%s %q : %q = % x : % x", s.name, key, value, e.Key, e.Val)
			}
		}
	})
}
