package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newClusterConfigCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "config NAME",
		Short: "Print a kubeconfig for a cluster's API (admin)",
		Long: `Print a kubeconfig that reaches the cluster's API as its admin: the
cluster's CA and admin token (from the service's Secret NAME-credentials)
and its API address. kubectl and client-go use it as is.`,
		Example: `  wharf cluster config demo > demo.kubeconfig
  KUBECONFIG=demo.kubeconfig kubectl get nodes`,
		Args: exactArgs(1, "NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			data, err := s.clusterKubeconfig(ctx, args[0])
			if err != nil {
				return err
			}
			if file != "" {
				if err := os.WriteFile(file, data, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(stdio.Err, "wrote %s: export KUBECONFIG=%s\n", file, file)
				return nil
			}
			_, err = stdio.Out.Write(data)
			return err
		}),
	}
	cmd.Flags().StringVar(&file, "output-file", "", "write the kubeconfig to this file (mode 0600) instead of standard output")
	return cmd
}

// clusterKubeconfig builds the admin kubeconfig of a cluster: context,
// cluster and user are named after it, so that several merge.
func (s *service) clusterKubeconfig(ctx context.Context, name string) ([]byte, error) {
	c, err := s.wharf.Clusters(s.project).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, s.explain(err, "cluster", name, nil)
	}
	if c.Status.APIAddress == "" {
		return nil, fmt.Errorf("cluster %s has no API address yet (%s): wait until it is %s (wharf cluster show %s)",
			name, orDash(c.Status.Status), wharfv1.StatusCreateComplete, name)
	}
	secret := name + "-credentials"
	sec, err := s.kube.CoreV1().Secrets(s.project).Get(ctx, secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("cluster %s has no credentials (Secret %s in project %s): is it being created? (wharf cluster show %s)", name, secret, s.project, name)
	case err != nil:
		return nil, fmt.Errorf("cluster %s: read Secret %s: %w", name, secret, err)
	}
	ca, token := sec.Data["ca.crt"], sec.Data["admin-token"]
	if len(ca) == 0 || len(token) == 0 {
		return nil, fmt.Errorf("cluster %s: Secret %s lacks ca.crt or admin-token", name, secret)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: c.Status.APIAddress, CertificateAuthorityData: ca}
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{Token: string(token)}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin", Namespace: "default"}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

func orDash(s string) string {
	if s == "" {
		return "no status yet"
	}
	return s
}
