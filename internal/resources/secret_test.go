package resources

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newSecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("hunter2")}}
}

func TestSecretDefaults(t *testing.T) {
	s := newSecret()
	s.StringData = map[string]string{"user": "admin", "password": "s3cret"}
	Secrets().Default(s)
	want := newSecret()
	want.Type = corev1.SecretTypeOpaque
	want.Data = map[string][]byte{"user": []byte("admin"), "password": []byte("s3cret")}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("defaulted secret (-want +got):\n%s", diff)
	}
}

func TestSecretValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Secret)
		want   []wantErr
	}{
		{name: "opaque", mutate: func(*corev1.Secret) {}},
		{name: "tls", mutate: func(s *corev1.Secret) {
			s.Type, s.Data = corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}
		}},
		{name: "docker config", mutate: func(s *corev1.Secret) {
			s.Type, s.Data = corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}
		}},
		{name: "bad name", mutate: func(s *corev1.Secret) { s.Name = "Creds!" }, want: []wantErr{invalid("metadata.name")}},
		{name: "bad key", mutate: func(s *corev1.Secret) { s.Data["a b"] = nil }, want: []wantErr{invalid("data[a b]")}},
		{name: "too big", mutate: func(s *corev1.Secret) { s.Data["big"] = []byte(strings.Repeat("x", corev1.MaxSecretSize)) }, want: []wantErr{tooLong("data")}},
		{name: "tls without keys", mutate: func(s *corev1.Secret) { s.Type = corev1.SecretTypeTLS },
			want: []wantErr{required("data[tls.crt]"), required("data[tls.key]")}},
		{name: "docker config missing", mutate: func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockerConfigJson },
			want: []wantErr{required("data[.dockerconfigjson]")}},
		{name: "docker config not JSON", mutate: func(s *corev1.Secret) {
			s.Type, s.Data = corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{")}
		}, want: []wantErr{invalid("data[.dockerconfigjson]")}},
		{name: "basic auth without fields", mutate: func(s *corev1.Secret) { s.Type, s.Data = corev1.SecretTypeBasicAuth, nil },
			want: []wantErr{required("data[username]"), required("data[password]")}},
		{name: "token without account", mutate: func(s *corev1.Secret) { s.Type = corev1.SecretTypeServiceAccountToken },
			want: []wantErr{required("metadata.annotations[kubernetes.io/service-account.name]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSecret()
			tt.mutate(s)
			Secrets().Default(s)
			checkErrs(t, Secrets().Validate(s), tt.want...)
		})
	}
}

func TestSecretUpdateRowFields(t *testing.T) {
	r := Secrets()
	old := newSecret()
	r.Default(old)
	s := old.DeepCopy()
	s.Type = corev1.SecretTypeBasicAuth
	checkErrs(t, r.ValidateUpdate(s, old), invalid("type"))

	old.Immutable = ptrTo(true)
	s = old.DeepCopy()
	s.Data["password"] = []byte("changed")
	checkErrs(t, r.ValidateUpdate(s, old), forbidden("data"))
	s = old.DeepCopy()
	s.Labels = map[string]string{"a": "b"}
	checkErrs(t, r.ValidateUpdate(s, old))

	old.CreationTimestamp = ago(42 * time.Minute)
	if diff := cmp.Diff([]any{"creds", "Opaque", int64(1), "42m"}, secretRow(old, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if !fields.ParseSelectorOrDie("type=Opaque").Matches(r.SelectableFields(old)) {
		t.Errorf("type not selectable")
	}
}
