package bench

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestPodsRefusesWhatANodeCannotRun: sizes a node cannot hold end at once
// with the reason, before anything starts (no root needed).
func TestPodsRefusesWhatANodeCannotRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  PodsConfig
	}{
		{"more than max pods", PodsConfig{Pods: 300, Batch: 10}},
		{"no batch", PodsConfig{Pods: 10, Batch: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Pods(context.Background(), Env{WorkDir: t.TempDir()}, io.Discard, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), "a node runs 1 to 110 pods") {
				t.Fatalf("Pods(%+v) = %v, want the node's limit named", tc.cfg, err)
			}
		})
	}
}
