package cri_test

import (
	"testing"

	"wharf.dev/wharf/internal/cri/critest"
)

// TestConformanceContainerd runs the suite against the client on a real
// containerd in its own network namespace, pulling from a TLS registry
// that demands the token containerd sends through hosts.toml.
func TestConformanceContainerd(t *testing.T) {
	critest.SkipUnlessRoot(t)
	reg := critest.ServeImages(t)
	host := critest.NewHost(t, reg, "")
	t.Logf("containerd start to CRI ready: %v", host.CRIReady)
	critest.Run(t, func(*testing.T) *critest.Env { return host.Env() })
	if reg.Authorized.Load() == 0 || reg.Rejected.Load() != 0 {
		t.Errorf("registry requests: %d with the token, %d without", reg.Authorized.Load(), reg.Rejected.Load())
	}
}
