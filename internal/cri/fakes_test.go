package cri_test

import (
	"testing"

	fakes "k8s.io/cri-api/pkg/apis/testing"

	"wharf.dev/wharf/internal/cri/critest"
)

// TestConformanceFakes runs the suite against cri-api's fakes, the
// runtime the agent's unit tests use: whatever the suite asks of
// bookkeeping (ids, states, label filters) the fakes and containerd agree
// on.
func TestConformanceFakes(t *testing.T) {
	critest.Run(t, func(*testing.T) *critest.Env {
		return &critest.Env{
			Runtime: fakes.NewFakeRuntimeService(),
			Images:  fakes.NewFakeImageService(),
			Image:   critest.Alias + "/wharf/busybox:test",
		}
	})
}
