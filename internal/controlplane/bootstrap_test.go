package controlplane_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/testserver"
	"wharf.dev/wharf/internal/wire"
)

// The server makes the heartbeat key: 32 random bytes.
func TestHeartbeatKeySecret(t *testing.T) {
	s := testserver.Start(t, func(o *controlplane.Options) { o.DisableControllers = true })
	sec, err := s.Client.CoreV1().Secrets(wire.HeartbeatKeyNamespace).Get(context.Background(), wire.HeartbeatKeySecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := sec.Data[wire.HeartbeatKeyField]
	if len(key) != 32 || string(key) == string(make([]byte, 32)) {
		t.Errorf("key %x, want 32 random bytes", key)
	}
}
