package announce

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeartbeatDecode(t *testing.T) {
	valid, _ := heartbeat{Cluster: "demo", Name: "node-a", Incarnation: 7, Seq: 42}.encode()
	for _, tc := range []struct {
		name string
		in   []byte
		want *heartbeat
	}{
		{"valid", valid, &heartbeat{Cluster: "demo", Name: "node-a", Incarnation: 7, Seq: 42}},
		{"appended fields ignored", append(append([]byte{}, valid...), 1, 2, 3),
			&heartbeat{Cluster: "demo", Name: "node-a", Incarnation: 7, Seq: 42}},
		{"empty", nil, nil},
		{"bad magic", append([]byte("xx"), valid[2:]...), nil},
		{"other version", append([]byte{'w', 'h', 2}, valid[3:]...), nil},
		{"name cut", valid[:len(valid)-1], nil},
		{"no name", valid[:headerSize+1+len("demo")], nil},
		{"empty name", append(append([]byte{}, valid[:headerSize+1+len("demo")]...), 0), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeHeartbeat(tc.in)
			if tc.want == nil {
				if ok {
					t.Errorf("decoded %+v, want nothing", got)
				}
				return
			}
			if !ok {
				t.Fatal("not decoded")
			}
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := (heartbeat{Name: strings.Repeat("n", 256)}).encode(); err == nil {
		t.Error("encoded a 256-byte name")
	}
}

// FuzzDecodeHeartbeat: any packet is ignored or decoded, never a panic,
// and what decodes encodes back to a packet that decodes the same.
func FuzzDecodeHeartbeat(f *testing.F) {
	valid, _ := heartbeat{Cluster: "demo", Name: "node-a", Incarnation: 7, Seq: 42}.encode()
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte("wh\x01"))
	f.Add(append(append([]byte{}, valid...), 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := decodeHeartbeat(b)
		if !ok {
			return
		}
		again, err := h.encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", h, err)
		}
		h2, ok := decodeHeartbeat(again)
		if !ok || h2 != h {
			t.Fatalf("round trip: %+v → %+v (%v)", h, h2, ok)
		}
	})
}
