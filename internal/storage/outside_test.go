package storage_test

import (
	"context"
	"testing"

	"wharf.dev/wharf/internal/storage"
)

// TestWritesOutsidePrefix: keys outside /registry/ (service allocations,
// package servicealloc) advance etcd's revision without events for the
// cache; a read of the latest state must still not wait for one.
func TestWritesOutsidePrefix(t *testing.T) {
	s, e := newStore(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, key("a"), cm("a", "1")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := e.Client.Put(ctx, "/wharf/outside", "v"); err != nil {
			t.Fatal(err)
		}
		page, err := s.List(ctx, prefix, storage.ListOptions{})
		if err != nil {
			t.Fatalf("list after write %d outside the prefix: %v", i, err)
		}
		if len(page.Items) != 1 {
			t.Fatalf("list: %d items, want 1", len(page.Items))
		}
	}
}
