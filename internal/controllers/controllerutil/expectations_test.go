package controllerutil

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	const key = "ns/rs"
	tests := []struct {
		name string
		do   func(e *Expectations, clock *time.Time)
		want bool
	}{
		{"nothing expected", func(*Expectations, *time.Time) {}, true},
		{"creations pending", func(e *Expectations, _ *time.Time) {
			e.ExpectCreations(key, 2)
			e.CreationObserved(key)
		}, false},
		{"creations observed", func(e *Expectations, _ *time.Time) {
			e.ExpectCreations(key, 2)
			e.CreationObserved(key)
			e.CreationObserved(key)
		}, true},
		{"deletion pending", func(e *Expectations, _ *time.Time) {
			e.ExpectDeletions(key, []string{"ns/a", "ns/b"})
			e.DeletionObserved(key, "ns/a")
		}, false},
		{"same deletion observed twice counts once", func(e *Expectations, _ *time.Time) {
			e.ExpectDeletions(key, []string{"ns/a", "ns/b"})
			e.DeletionObserved(key, "ns/a")
			e.DeletionObserved(key, "ns/a")
		}, false},
		{"unexpected deletion does not count", func(e *Expectations, _ *time.Time) {
			e.ExpectDeletions(key, []string{"ns/a"})
			e.DeletionObserved(key, "ns/other")
		}, false},
		{"deletions observed", func(e *Expectations, _ *time.Time) {
			e.ExpectDeletions(key, []string{"ns/a", "ns/b"})
			e.DeletionObserved(key, "ns/b")
			e.DeletionObserved(key, "ns/a")
		}, true},
		{"expired", func(e *Expectations, clock *time.Time) {
			e.ExpectCreations(key, 3)
			*clock = clock.Add(ExpectationsTimeout + time.Second)
		}, true},
		{"deleted", func(e *Expectations, _ *time.Time) {
			e.ExpectCreations(key, 3)
			e.Delete(key)
		}, true},
		{"other key unaffected", func(e *Expectations, _ *time.Time) {
			e.ExpectCreations("ns/other", 3)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			e := NewExpectations()
			e.now = func() time.Time { return clock }
			tt.do(e, &clock)
			if got := e.Satisfied(key); got != tt.want {
				t.Errorf("Satisfied = %v, want %v", got, tt.want)
			}
		})
	}
}
