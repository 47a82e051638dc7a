package up

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/usercert"
)

// Kubeconfig returns a kubeconfig of the cluster in stateDir: the admin's,
// as the server wrote it, or with r one of r.User whose client
// certificate the cluster signs through a CertificateSigningRequest that
// the admin's credentials create and approve (usercert); its user and
// context are named <cluster>-<user>.
func Kubeconfig(ctx context.Context, stateDir string, r *usercert.Request) ([]byte, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	path := layoutOf(Options{StateDir: abs}).kubeconfig()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("no cluster in %s (%s is missing): start one with wharf up --state-dir %s", abs, path, stateDir)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("read the admin's kubeconfig: %w: it belongs to whoever ran wharf up (root): run this as root too", err)
	case err != nil:
		return nil, fmt.Errorf("read the admin's kubeconfig: %w", err)
	}
	if r == nil {
		return data, nil
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || cfg.Clusters[kctx.Cluster] == nil {
		return nil, fmt.Errorf("%s: no cluster in its current context %q", path, cfg.CurrentContext)
	}
	admin, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	admin.UserAgent = "wharf"
	return usercert.UserKubeconfig(ctx, admin, kctx.Cluster, cfg.Clusters[kctx.Cluster], *r)
}
