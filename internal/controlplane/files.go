package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/wire"
)

// tokens are the server's long-lived secrets, kept in <data-dir>/tokens.json.
type tokens struct {
	admin, join string
}

func loadTokens(dataDir string) (tokens, error) {
	path := filepath.Join(dataDir, "tokens.json")
	var f struct {
		Admin string `json:"admin"`
		Join  string `json:"join"`
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &f); err != nil || f.Admin == "" || f.Join == "" {
			return tokens{}, fmt.Errorf("%s is damaged; remove it to make new tokens: %v", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		f.Admin, f.Join = randomToken(), randomToken()
		data, _ := json.Marshal(f)
		if err := pki.WriteFile(path, data, 0o600); err != nil {
			return tokens{}, fmt.Errorf("write tokens: %w", err)
		}
	default:
		return tokens{}, fmt.Errorf("read tokens: %w", err)
	}
	return tokens{admin: f.Admin, join: f.Join}, nil
}

// writeClientFiles writes admin.kubeconfig and join-token into the data dir.
func (s *Server) writeClientFiles(adminToken string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["wharf"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.ca.CertPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: adminToken}
	cfg.Contexts["wharf"] = &clientcmdapi.Context{Cluster: "wharf", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "wharf"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	s.AdminKubeconfig = filepath.Join(s.opts.DataDir, "admin.kubeconfig")
	if err := pki.WriteFile(s.AdminKubeconfig, data, 0o600); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	if err := pki.WriteFile(filepath.Join(s.opts.DataDir, "join-token"), []byte(s.JoinToken+"\n"), 0o600); err != nil {
		return fmt.Errorf("write join token: %w", err)
	}
	return nil
}

// bootstrap creates what every cluster starts with, through the API like any client.
func (s *Server) bootstrap(ctx context.Context, port int) error {
	client, err := kubernetes.NewForConfig(s.Loopback)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if err := create("namespace "+ns, func() error {
			_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		}); err != nil {
			return err
		}
	}
	// The key of the nodes' heartbeats (announce.MembersConfig.Key), made once.
	if err := create("secret "+wire.HeartbeatKeySecret, func() error {
		key := make([]byte, 32)
		rand.Read(key)
		_, err := client.CoreV1().Secrets(wire.HeartbeatKeyNamespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: wire.HeartbeatKeySecret},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{wire.HeartbeatKeyField: key},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := bootstrapRBAC(ctx, client); err != nil {
		return err
	}
	if !s.opts.Service {
		if err := bootstrapStorageClass(ctx, client); err != nil {
			return err
		}
	}
	// The kubernetes service: how pods find the API.
	if _, err := client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		err = create("service kubernetes", func() error {
			_, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
					Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(port)),
				}}},
			}, metav1.CreateOptions{})
			return err
		})
		if err != nil {
			return err
		}
	}
	// Its endpoints: apiserverlease.go, started after bootstrap.
	return nil
}

// create runs f, which creates what: one that exists already is fine.
func create(what string, f func() error) error {
	if err := f(); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bootstrap %s: %w", what, err)
	}
	return nil
}
