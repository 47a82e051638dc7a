package controlplane_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/testserver"
)

// A server listening on one address (a host's, in the cluster service)
// reaches itself there, not on 127.0.0.1.
func TestServerOnOneAddress(t *testing.T) {
	s := testserver.Start(t, func(o *controlplane.Options) { o.Listen = "127.0.0.2:0"; o.DisableControllers = true })
	if _, err := s.Client.CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("bootstrap through 127.0.0.2: %v", err)
	}
}
