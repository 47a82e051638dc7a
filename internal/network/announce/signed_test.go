package announce

import (
	"net/netip"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	key, other := []byte("0123456789abcdef0123456789abcdef"), []byte("another key of the same length!!")
	now := time.Now()
	plain, err := heartbeat{Cluster: "c1", Name: "node-1", Incarnation: 7, Seq: 42}.encode()
	if err != nil {
		t.Fatal(err)
	}
	signed := sign(plain, key, now)
	flipped := append([]byte(nil), signed...)
	flipped[len(flipped)-1] ^= 1
	renamed, _ := heartbeat{Cluster: "c1", Name: "node-2", Incarnation: 7, Seq: 42}.encode()
	spliced := append(renamed, signed[len(plain):]...) // another node's name, this one's tag
	for _, tc := range []struct {
		name string
		msg  []byte
		key  []byte
		at   time.Time
		ok   bool
	}{
		{"signed", signed, key, now, true},
		{"clocks 29 s apart", signed, key, now.Add(29 * time.Second), true},
		{"clocks 29 s apart the other way", signed, key, now.Add(-29 * time.Second), true},
		{"a replay 31 s later", signed, key, now.Add(31 * time.Second), false},
		{"from 31 s ahead", signed, key, now.Add(-31 * time.Second), false},
		{"unsigned", plain, key, now, false},
		{"another key", signed, other, now, false},
		{"tag altered", flipped, key, now, false},
		{"tag of another message", spliced, key, now, false},
		{"a byte more", append(append([]byte(nil), signed...), 0), key, now, false},
		{"a byte less", signed[:len(signed)-1], key, now, false},
	} {
		h, decoded := decodeHeartbeat(tc.msg)
		if !decoded {
			t.Fatalf("%s: not a heartbeat", tc.name)
		}
		if err := verify(tc.msg, h, tc.key, tc.at); (err == nil) != tc.ok {
			t.Errorf("%s: verify = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	// Receivers without a key read a signed heartbeat as an unsigned one.
	if h, ok := decodeHeartbeat(signed); !ok || h.Name != "node-1" || h.Seq != 42 {
		t.Errorf("decode of a signed heartbeat: %+v, %v", h, ok)
	}
}

// With a key, the nodes hear each other; heartbeats in a member's name
// without the key (or with another) do not keep it alive once it stops.
func TestMembersSigned(t *testing.T) {
	key := []byte("the cluster's heartbeat key.....")
	ms := map[string]*member{}
	for _, name := range []string{"a", "b"} {
		ms[name] = startMember(t, MembersConfig{Self: name, Cluster: "c1", Key: key})
	}
	meshed(ms)
	a := ms["a"]
	time.Sleep(DefaultTimeout + DefaultInterval)
	if !a.Alive("b") || !ms["b"].Alive("a") {
		t.Fatalf("signed members do not hear each other: a sees %v, b sees %v", a.AliveSet(), ms["b"].AliveSet())
	}
	ms["b"].stop()
	eventually(t, "b dead for a", func() bool { return !a.Alive("b") })
	for _, forger := range []MembersConfig{
		{Self: "b", Cluster: "c1"}, // no key
		{Self: "b", Cluster: "c1", Key: []byte("a guessed key of 32 bytes......")}, // another
	} {
		f := startMember(t, forger)
		f.SetPeers(map[string]netip.AddrPort{"a": a.addr()})
		time.Sleep(DefaultTimeout)
		if a.Alive("b") {
			t.Errorf("b alive again from heartbeats %s", map[bool]string{true: "with another key", false: "without a key"}[forger.Key != nil])
		}
		f.stop()
	}
	// The real b, restarted, is heard again.
	ms["b"] = startMember(t, MembersConfig{Self: "b", Cluster: "c1", Key: key})
	meshed(ms)
	eventually(t, "b alive again", func() bool { return a.Alive("b") })
}
