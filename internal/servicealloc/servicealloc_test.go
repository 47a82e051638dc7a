package servicealloc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"wharf.dev/wharf/internal/storage"
)

func newAllocator(t *testing.T) (*Allocator, *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{Dir: t.TempDir(), UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); e.Close() })
	return New(e.Client, log), e.Client
}

var (
	ownerA = Owner{UID: "uid-a", Namespace: "default", Name: "a"}
	ownerB = Owner{UID: "uid-b", Namespace: "other", Name: "b"}
	ip10   = Key{Range: ClusterIPs, Value: "10.96.0.10"}
	port1  = Key{Range: NodePorts, Value: "30001"}
)

func TestReserveRelease(t *testing.T) {
	a, _ := newAllocator(t)
	ctx := context.Background()
	steps := []struct {
		name        string
		do          func() (bool, error)
		wantCreated bool
		wantErr     error
	}{
		{"a reserves", func() (bool, error) { return a.Reserve(ctx, ip10, ownerA) }, true, nil},
		{"a again: already its", func() (bool, error) { return a.Reserve(ctx, ip10, ownerA) }, false, nil},
		{"b is refused", func() (bool, error) { return a.Reserve(ctx, ip10, ownerB) }, false, ErrTaken},
		{"b's dry run is refused", func() (bool, error) { return false, a.Check(ctx, ip10, ownerB) }, false, ErrTaken},
		{"a's dry run passes", func() (bool, error) { return false, a.Check(ctx, ip10, ownerA) }, false, nil},
		{"b's release frees nothing", func() (bool, error) { return false, a.Release(ctx, ownerB, ip10) }, false, nil},
		{"still a's", func() (bool, error) { return a.Reserve(ctx, ip10, ownerB) }, false, ErrTaken},
		{"same value in another range is free", func() (bool, error) { return a.Reserve(ctx, Key{NodePorts, "10.96.0.10"}, ownerB) }, true, nil},
		{"a releases", func() (bool, error) { return false, a.Release(ctx, ownerA, ip10) }, false, nil},
		{"b reserves the freed value", func() (bool, error) { return a.Reserve(ctx, ip10, ownerB) }, true, nil},
	}
	for _, s := range steps {
		created, err := s.do()
		if created != s.wantCreated || !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: created %v, err %v; want %v, %v", s.name, created, err, s.wantCreated, s.wantErr)
		}
	}
	l, err := a.List(ctx, ClusterIPs)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || l[0].Key != ip10 || l[0].Owner != ownerB {
		t.Fatalf("list: %+v, want only %s held by %s", l, ip10, ownerB)
	}
}

// TestReserveRace: of many owners reserving one value at once, one wins.
func TestReserveRace(t *testing.T) {
	a, _ := newAllocator(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, taken := 0, 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created, err := a.Reserve(ctx, port1, Owner{UID: fmt.Sprint("uid-", i), Namespace: "ns", Name: fmt.Sprint("s", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case created && err == nil:
				wins++
			case errors.Is(err, ErrTaken):
				taken++
			default:
				t.Errorf("reserve %d: created %v, %v", i, created, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || taken != 39 {
		t.Fatalf("%d won, %d refused; want 1 and 39", wins, taken)
	}
}

// fakeLive is an in-memory set of services.
type fakeLive struct {
	held      []Held
	confirmed map[Owner]bool
}

func (f *fakeLive) Services(context.Context) ([]Held, error) { return f.held, nil }

func (f *fakeLive) Confirm(_ context.Context, o Owner, _ Key) (bool, error) {
	return f.confirmed[o], nil
}

func TestRepair(t *testing.T) {
	a, client := newAllocator(t)
	ctx := context.Background()
	leaked := Owner{UID: "uid-gone", Namespace: "default", Name: "gone"}
	late := Owner{UID: "uid-late", Namespace: "default", Name: "late"}
	for _, r := range []struct {
		k Key
		o Owner
	}{{ip10, ownerA}, {port1, leaked}, {Key{ClusterIPs, "10.96.0.99"}, leaked}} {
		if _, err := a.Reserve(ctx, r.k, r.o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Put(ctx, Prefix+string(NodePorts)+"/30009", "garbage"); err != nil {
		t.Fatal(err)
	}
	live := &fakeLive{
		held: []Held{
			{Owner: ownerA, Keys: []Key{ip10}},
			// b lacks its reservations (written before they existed); one
			// of b's values is held by a: a conflict to report, not fix.
			{Owner: ownerB, Keys: []Key{{ClusterIPs, "10.96.0.20"}, {NodePorts, "30002"}}},
			// late vanished since the list: not confirmed, not restored.
			{Owner: late, Keys: []Key{{NodePorts, "30003"}}},
			{Owner: Owner{UID: "uid-c", Namespace: "x", Name: "c"}, Keys: []Key{ip10}},
		},
		confirmed: map[Owner]bool{ownerB: true, {UID: "uid-c", Namespace: "x", Name: "c"}: true},
	}
	r := NewRepairer(a, live, slog.New(slog.DiscardHandler), ClusterIPs, NodePorts)
	want := []PassResult{{Freed: 0, Restored: 2, Conflicts: 1}, {Freed: 3, Restored: 0, Conflicts: 1}, {Conflicts: 1}}
	for i, w := range want {
		got, err := r.Pass(ctx)
		if err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
		if got != w {
			t.Fatalf("pass %d: %+v, want %+v", i, got, w)
		}
	}
	for _, tc := range []struct {
		k    Key
		want Owner
		free bool
	}{
		{ip10, ownerA, false},
		{Key{ClusterIPs, "10.96.0.20"}, ownerB, false},
		{Key{NodePorts, "30002"}, ownerB, false},
		{port1, Owner{}, true},
		{Key{ClusterIPs, "10.96.0.99"}, Owner{}, true},
		{Key{NodePorts, "30009"}, Owner{}, true},
		{Key{NodePorts, "30003"}, Owner{}, true},
	} {
		resp, err := client.Get(ctx, tc.k.path())
		if err != nil {
			t.Fatal(err)
		}
		if tc.free {
			if len(resp.Kvs) != 0 {
				t.Errorf("%s: held by %q, want free", tc.k, resp.Kvs[0].Value)
			}
			continue
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != tc.want.encode() {
			t.Errorf("%s: %v, want held by %s", tc.k, resp.Kvs, tc.want)
		}
	}
}

// TestRepairSparesNewReservations: a reservation re-made between passes
// (same key, new mod revision) is a new suspect, not freed.
func TestRepairSparesNewReservations(t *testing.T) {
	a, _ := newAllocator(t)
	ctx := context.Background()
	r := NewRepairer(a, &fakeLive{}, slog.New(slog.DiscardHandler), NodePorts)
	if _, err := a.Reserve(ctx, port1, ownerA); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.Pass(ctx); res.Freed != 0 {
		t.Fatalf("first pass freed %d", res.Freed)
	}
	if err := a.Release(ctx, ownerA, port1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, port1, ownerB); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.Pass(ctx); res.Freed != 0 {
		t.Fatalf("second pass freed %d, want 0: the reservation is new", res.Freed)
	}
	if res, _ := r.Pass(ctx); res.Freed != 1 {
		t.Fatalf("third pass freed %d, want 1", res.Freed)
	}
}

func FuzzParseOwner(f *testing.F) {
	f.Add("uid ns/name")
	f.Add(" /")
	f.Add("uid /name")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOwner(s)
		if err != nil {
			return
		}
		back, err := parseOwner(o.encode())
		if err != nil || back != o {
			t.Fatalf("%q: parsed %+v, round trip %+v, %v", s, o, back, err)
		}
	})
}
