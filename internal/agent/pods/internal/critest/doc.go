// Package critest is a copy of k8s.io/cri-api/pkg/apis/testing v0.37.2
// (FakeRuntimeService, FakeImageService), the CRI fakes the pod workers
// are tested against.
//
// Why a copy: the original's image fake imports
// github.com/stretchr/testify, which go.mod does not require, so importing
// it breaks every build of the module until go.mod lists testify. The
// changes: AssertImagePulledWithAuth reports through t.Error instead of
// testify, and one receiver is renamed for staticcheck. Once go.mod
// requires testify, tests can import the original package instead (same
// names) and this directory can go.
package critest
