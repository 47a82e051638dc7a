package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/usercert"
)

// userFlags are --user, --group and --expiration: a kubeconfig of a user
// whose client certificate the cluster signs (wharf cluster config, wharf up config).
type userFlags struct {
	user       string
	groups     []string
	expiration time.Duration
}

func (u *userFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&u.user, "user", "", "a kubeconfig for this user (a client certificate the cluster signs) instead of the admin's")
	f.StringArrayVar(&u.groups, "group", nil, "a group of --user (repeatable); RBAC bindings of the user or its groups decide what it may do")
	f.DurationVar(&u.expiration, "expiration", usercert.DefaultExpiration, "how long the certificate of --user is valid (at least 10m; the cluster caps it at a year)")
}

// request is the certificate to ask for, nil for the admin's kubeconfig.
func (u *userFlags) request(reason string) (*usercert.Request, error) {
	if u.user == "" {
		if len(u.groups) > 0 {
			return nil, errors.New("--group needs --user")
		}
		return nil, nil
	}
	r := &usercert.Request{User: u.user, Groups: u.groups, Expiration: u.expiration, Reason: reason}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("--user %s: %w", u.user, err)
	}
	return r, nil
}

// writeKubeconfig prints a kubeconfig, or writes it to file (mode 0600).
func writeKubeconfig(stdio Stdio, file string, data []byte) error {
	if file != "" {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "wrote %s: export KUBECONFIG=%s\n", file, file)
		return nil
	}
	_, err := stdio.Out.Write(data)
	return err
}

func newClusterConfigCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var file string
	var uf userFlags
	cmd := &cobra.Command{
		Use:   "config NAME [--user USER [--group GROUP]...]",
		Short: "Print a kubeconfig for a cluster's API (admin, or a user's certificate)",
		Long: `Print a kubeconfig that reaches the cluster's API as its admin: the
cluster's CA and admin token (from the service's Secret NAME-credentials)
and its API address. kubectl and client-go use it as is.

With --user, the kubeconfig is a user's instead: a key is made here, a
CertificateSigningRequest for it (common name the user, organizations the
--group values) is created and approved on the cluster with the admin
credentials, and the cluster's control plane signs it with the cluster's
CA (this command never reads the CA key). The user may do what RBAC
bindings of the user or its groups allow: nothing until some exist. The
request stays in the cluster as a record (kubectl get csr).
system:masters is refused: bind cluster-admin instead.`,
		Example: `  wharf cluster config demo > demo.kubeconfig
  KUBECONFIG=demo.kubeconfig kubectl get nodes

  # alice, in the group devs, may read the default namespace:
  wharf cluster config demo --user alice --group devs --output-file alice.kubeconfig
  KUBECONFIG=demo.kubeconfig kubectl create rolebinding devs-view --clusterrole view --group devs
  KUBECONFIG=alice.kubeconfig kubectl auth whoami`,
		Args: exactArgs(1, "NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			r, err := uf.request("WharfClusterConfig")
			if err != nil {
				return err
			}
			name := args[0]
			access, err := s.clusterAccess(ctx, name)
			if err != nil {
				return err
			}
			var data []byte
			if r == nil {
				data, err = access.adminKubeconfig(name)
			} else {
				data, err = usercert.UserKubeconfig(ctx, access.restConfig(), name, access.cluster(), *r)
				if err != nil {
					err = fmt.Errorf("cluster %s: %w", name, err)
				}
			}
			if err != nil {
				return err
			}
			return writeKubeconfig(stdio, file, data)
		}),
	}
	cmd.Flags().StringVar(&file, "output-file", "", "write the kubeconfig to this file (mode 0600) instead of standard output")
	uf.register(cmd)
	return cmd
}

// clusterAccess is how a cluster's API is reached as its admin.
type clusterAccess struct {
	server string
	ca     []byte
	token  string
}

func (a clusterAccess) cluster() *clientcmdapi.Cluster {
	return &clientcmdapi.Cluster{Server: a.server, CertificateAuthorityData: a.ca}
}

func (a clusterAccess) restConfig() *rest.Config {
	return &rest.Config{Host: a.server, BearerToken: a.token, TLSClientConfig: rest.TLSClientConfig{CAData: a.ca}, UserAgent: "wharf"}
}

// adminKubeconfig builds the admin kubeconfig of a cluster: context,
// cluster and user are named after it, so that several merge.
func (a clusterAccess) adminKubeconfig(name string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = a.cluster()
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{Token: a.token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin", Namespace: "default"}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// clusterAccess reads a cluster's API address and admin credentials.
func (s *service) clusterAccess(ctx context.Context, name string) (clusterAccess, error) {
	c, err := s.wharf.Clusters(s.project).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return clusterAccess{}, s.explain(err, "cluster", name, nil)
	}
	if c.Status.APIAddress == "" {
		return clusterAccess{}, fmt.Errorf("cluster %s has no API address yet (%s): wait until it is %s (wharf cluster show %s)",
			name, orDash(c.Status.Status), wharfv1.StatusCreateComplete, name)
	}
	secret := name + "-credentials"
	sec, err := s.kube.CoreV1().Secrets(s.project).Get(ctx, secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return clusterAccess{}, fmt.Errorf("cluster %s has no credentials (Secret %s in project %s): is it being created? (wharf cluster show %s)", name, secret, s.project, name)
	case err != nil:
		return clusterAccess{}, fmt.Errorf("cluster %s: read Secret %s: %w", name, secret, err)
	}
	ca, token := sec.Data["ca.crt"], sec.Data["admin-token"]
	if len(ca) == 0 || len(token) == 0 {
		return clusterAccess{}, fmt.Errorf("cluster %s: Secret %s lacks ca.crt or admin-token", name, secret)
	}
	return clusterAccess{server: c.Status.APIAddress, ca: ca, token: string(token)}, nil
}

func orDash(s string) string {
	if s == "" {
		return "no status yet"
	}
	return s
}
