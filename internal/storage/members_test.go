package storage_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"wharf.dev/wharf/internal/storage"
)

func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// TestJoinAsLearner: a member joins a running one as a learner, one at a
// time, is promoted once caught up, and both see two voters; a member
// made again under the same name replaces the old one.
func TestJoinAsLearner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	peerA := freeURL(t)
	a, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{
		Dir: t.TempDir(), Name: "a", ClientURL: freeURL(t), PeerURL: peerA, InitialCluster: "a=" + peerA, UnsafeNoFsync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.IsLeader() {
		t.Fatal("a one-member cluster's member does not lead")
	}
	const key = "/before-join"
	if _, err := a.Client.Put(ctx, key, "v"); err != nil {
		t.Fatal(err)
	}

	peerB := freeURL(t)
	resp, err := storage.AddLearner(ctx, a.Client, "b", peerB)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a=" + peerA + ",b=" + peerB; resp.InitialCluster != want {
		t.Errorf("initial cluster %q, want %q", resp.InitialCluster, want)
	}
	// A third member waits for the second to start.
	if _, err := storage.AddLearner(ctx, a.Client, "c", freeURL(t)); !errors.Is(err, storage.ErrJoinInProgress) {
		t.Errorf("a second join while one is pending: %v, want ErrJoinInProgress", err)
	}
	// Asking again for the pending member (its host retrying) is answered the same.
	again, err := storage.AddLearner(ctx, a.Client, "b", peerB)
	if err != nil || again.ID != resp.ID {
		t.Errorf("retried join: %+v, %v; want id %s", again, err, resp.ID)
	}
	b, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{
		Dir: t.TempDir(), Name: "b", ClientURL: freeURL(t), PeerURL: peerB,
		InitialCluster: resp.InitialCluster, Join: true, UnsafeNoFsync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	promote(ctx, t, a, "b")
	if err := storage.Promote(ctx, a.Client, "b"); err != nil {
		t.Errorf("promoting a voter again: %v", err)
	}
	st := b.Status()
	for deadline := time.Now().Add(10 * time.Second); st.Learner && time.Now().Before(deadline); st = b.Status() {
		time.Sleep(20 * time.Millisecond) // b applies its promotion a moment after the leader
	}
	if st.Learner || st.Leader == "" || len(st.Members) != 2 {
		t.Errorf("b's view after promotion: %+v; want a voter with a leader among 2 members", st)
	}
	got, err := b.Client.Get(ctx, key)
	if err != nil || len(got.Kvs) != 1 {
		t.Errorf("b lacks what a held before it joined: %v %v", got, err)
	}
	if st.AppliedIndex == 0 || st.Revision < 2 {
		t.Errorf("b's view: applied %d, revision %d", st.AppliedIndex, st.Revision)
	}
}

// promote makes the learner name a voter once it has caught up.
func promote(ctx context.Context, t *testing.T, leader *storage.Embedded, name string) {
	t.Helper()
	for {
		err := storage.Promote(ctx, leader.Client, name)
		if err == nil {
			return
		}
		if !errors.Is(err, storage.ErrNotCaughtUp) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
