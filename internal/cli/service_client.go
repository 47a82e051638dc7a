package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	wharfclient "wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/clusterservice"
)

// How the cluster commands find the service: --service-kubeconfig, else
// $WHARF_SERVICE_KUBECONFIG, else the file `wharf service start` writes
// in the default state dir.
const (
	defaultServiceStateDir = clusterservice.DefaultStateDir
	serviceKubeconfigEnv   = clusterservice.KubeconfigEnv
)

// serviceFlags are the flags every command talking to the service has.
type serviceFlags struct {
	kubeconfig string
	project    string
}

func (f *serviceFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.kubeconfig, "service-kubeconfig", "", "kubeconfig of the cluster service (default $"+serviceKubeconfigEnv+", else "+filepath.Join(defaultServiceStateDir, "admin.kubeconfig")+")")
	pf.StringVar(&f.project, "project", "", "project (namespace) of the service to work in (default: the kubeconfig's namespace, else \"default\")")
}

func (f *serviceFlags) path() string {
	switch {
	case f.kubeconfig != "":
		return f.kubeconfig
	case os.Getenv(serviceKubeconfigEnv) != "":
		return os.Getenv(serviceKubeconfigEnv)
	}
	return filepath.Join(defaultServiceStateDir, "admin.kubeconfig")
}

// withService is a RunE that connects to the service, then runs body
// with the command's context and arguments. A command that checks its arguments
// before connecting calls connect itself.
func (f *serviceFlags) withService(body func(ctx context.Context, s *service, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		return body(cmd.Context(), s, args)
	}
}

// service is a connection to the cluster service, in one project.
type service struct {
	wharf   *wharfclient.Client
	kube    kubernetes.Interface
	project string
	url     string
}

const noServiceHint = "run `wharf service start` or pass --service-kubeconfig"

// connect reads the service's kubeconfig and checks that the service answers.
func (f *serviceFlags) connect(ctx context.Context) (*service, error) {
	path := f.path()
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no service: %s (no %s)", noServiceHint, path)
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("service kubeconfig %s: %w", path, err)
	}
	project := f.project
	if project == "" {
		if project, _, err = loader.Namespace(); err != nil || project == "" {
			project = "default"
		}
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	wc, err := wharfclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(pctx); err != nil {
		return nil, fmt.Errorf("no service at %s (%v): %s", cfg.Host, shortErr(err), noServiceHint)
	}
	return &service{wharf: wc, kube: kube, project: project, url: cfg.Host}, nil
}

// shortErr drops the request URL Go's HTTP errors repeat.
func shortErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "dial tcp") {
		return msg[i+2:]
	}
	return msg
}

// explain turns an API error about one object into what a user of the
// CLI needs: which object, in which project, and which flag was wrong
// (flags maps API field paths to the command's flags).
func (s *service) explain(err error, kind, name string, flags map[string]string) error {
	if err == nil {
		return nil
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return err
	}
	st := se.Status()
	switch {
	case apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces":
		return fmt.Errorf("project %q not found: create it with `kubectl create namespace %s` against the service", s.project, s.project)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %q not found in project %q", kind, name, s.project)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s %q already exists in project %q", kind, name, s.project)
	case apierrors.IsInvalid(err) && st.Details != nil && len(st.Details.Causes) > 0:
		var lines []string
		for _, c := range st.Details.Causes {
			where := c.Field
			if flag := flagOf(c.Field, flags); flag != "" {
				where = flag + " (" + c.Field + ")"
			} else if c.Field == "metadata.name" {
				where = "name"
			}
			lines = append(lines, fmt.Sprintf("  %s: %s", where, c.Message))
		}
		sort.Strings(lines)
		return fmt.Errorf("invalid %s %q:\n%s", kind, name, strings.Join(lines, "\n"))
	case apierrors.IsConflict(err):
		// "Operation cannot be fulfilled on clusters.wharf.dev "x": why": keep why.
		if _, why, ok := strings.Cut(st.Message, `": `); ok {
			return errors.New(why)
		}
	}
	return err
}

// flagOf returns the flag behind an API field: that of the field or of
// the nearest enclosing one (spec.labels for spec.labels[k]).
func flagOf(path string, flags map[string]string) string {
	for p := path; p != ""; {
		if flag, ok := flags[p]; ok {
			return flag
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}
