package speaker

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/wire"
)

func TestHeartbeatKey(t *testing.T) {
	secret := func(key []byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: wire.HeartbeatKeyNamespace, Name: wire.HeartbeatKeySecret},
			Data: map[string][]byte{wire.HeartbeatKeyField: key}}
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name    string
		objects []runtime.Object
		want    []byte
		err     bool
	}{
		{"the server's key", []runtime.Object{secret(key)}, key, false},
		{"no key (an older server): unsigned", nil, nil, false},
		{"a key too short", []runtime.Object{secret([]byte("short"))}, nil, true},
	} {
		s := New(Config{Client: fake.NewClientset(tc.objects...), NodeName: "n"})
		got, err := s.heartbeatKey(context.Background())
		if (err != nil) != tc.err || string(got) != string(tc.want) {
			t.Errorf("%s: %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
