package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// newClusterCmd is `wharf cluster`: Magnum's `openstack coe cluster`
// against the cluster service.
func newClusterCmd(stdio Stdio) *cobra.Command {
	sf := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Create, list, resize and delete clusters of the cluster service",
		Long: `Manage clusters of the cluster service (wharf service), as
'openstack coe cluster' manages Magnum's. Each cluster is a Wharf control
plane and its nodes, on hosts the service's provider makes; its API is
Kubernetes', so kubectl drives it (wharf cluster config).

The service is found through --service-kubeconfig, $` + serviceKubeconfigEnv + `, or
the kubeconfig 'wharf service start' writes in ` + defaultServiceStateDir + `.
Clusters live in a project (a namespace of the service): --project.`,
		Example: `  wharf cluster template create k8s-local --coe kubernetes --provider local
  wharf cluster create demo --template k8s-local --node-count 2 --wait
  wharf cluster list
  wharf cluster config demo > demo.kubeconfig && KUBECONFIG=demo.kubeconfig kubectl get nodes
  wharf cluster resize demo 4
  wharf cluster delete demo --wait`,
	}
	sf.register(cmd)
	cmd.AddCommand(newClusterCreateCmd(sf, stdio), newClusterListCmd(sf, stdio), newClusterShowCmd(sf, stdio),
		newClusterDeleteCmd(sf, stdio), newClusterUpdateCmd(sf, stdio), newClusterResizeCmd(sf, stdio),
		newClusterConfigCmd(sf, stdio), newTemplateCmd(sf, stdio))
	return cmd
}

type clusterCreateOptions struct {
	template    string
	masterCount int32
	nodeCount   int32
	labels      []string
	mergeLabels bool
	timeout     string
	wait        waitFlags
}

func newClusterCreateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	o := &clusterCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME --template TEMPLATE",
		Short: "Create a cluster from a cluster template",
		Long: `Create a cluster: the service's controller makes its hosts, starts its
control plane on the masters and joins the nodes. Without --wait the command
returns at once; 'wharf cluster show NAME' follows the status
(CREATE_IN_PROGRESS, then CREATE_COMPLETE or CREATE_FAILED with a reason).

NAME is a DNS label of at most 40 characters: host names derive from it
(NAME-master-1, NAME-node-1, ...). The template is one of the project's or
another project's public one, as PROJECT/TEMPLATE.

Labels are the template's unless --labels is given: then only those, or
with --merge-labels the template's overridden by --labels.`,
		Example: `  wharf cluster create demo --template k8s-local --master-count 1 --node-count 2 --wait
  wharf cluster create ci --template ops/k8s-small --labels auto_healing_enabled=true --merge-labels`,
		Args: exactArgs(1, "NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			return s.createCluster(ctx, stdio, args[0], o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.template, "template", "", "the cluster template: NAME, or PROJECT/NAME for another project's public template (required)")
	f.Int32Var(&o.masterCount, "master-count", 1, "control plane hosts: 1 (3, 5 or 7 with high availability)")
	f.Int32Var(&o.nodeCount, "node-count", 1, "worker hosts of the default node group")
	f.StringArrayVar(&o.labels, "labels", nil, "labels, key=value[,key=value...] (repeatable); see --merge-labels")
	f.BoolVar(&o.mergeLabels, "merge-labels", false, "start from the template's labels and override them with --labels")
	f.StringVar(&o.timeout, "timeout", "", "how long creation may take before CREATE_FAILED: minutes or a duration (default 10m)")
	o.wait.register(cmd, "until the cluster is CREATE_COMPLETE, showing each provisioning step")
	return cmd
}

func (s *service) createCluster(ctx context.Context, stdio Stdio, name string, o *clusterCreateOptions) error {
	if o.template == "" {
		return errors.New("--template is required: see `wharf cluster template list`")
	}
	labels, err := parseLabels(o.labels)
	if err != nil {
		return err
	}
	timeout, err := parseTimeout(o.timeout)
	if err != nil {
		return err
	}
	if o.mergeLabels {
		t, err := s.getTemplate(ctx, o.template)
		if err != nil {
			return err
		}
		merged := map[string]string{}
		for k, v := range t.Spec.Labels {
			merged[k] = v
		}
		for k, v := range labels {
			merged[k] = v
		}
		labels = merged
	}
	c := &wharfv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.project},
		Spec: wharfv1.ClusterSpec{
			Template: o.template, MasterCount: o.masterCount, NodeCount: o.nodeCount, Labels: labels, CreateTimeout: timeout,
		},
	}
	start := time.Now()
	created, err := s.wharf.Clusters(s.project).Create(ctx, c, metav1.CreateOptions{})
	if err != nil {
		return s.explain(err, "cluster", name, clusterFlags)
	}
	if !o.wait.wait {
		fmt.Fprintf(stdio.Out, "Request to create cluster %s accepted (uuid %s)\n", name, created.UID)
		return nil
	}
	fmt.Fprintf(stdio.Out, "Creating cluster %s: %s, %s from template %s\n", name,
		plural(created.Spec.MasterCount, "master"), plural(created.Spec.NodeCount, "node"), created.Spec.Template)
	wait := o.wait.timeout
	if wait == 0 {
		// The controller fails the cluster at createTimeout; a margin
		// for it to say so.
		wait = created.Spec.CreateTimeout.Duration + time.Minute
	}
	p := &progress{out: stdio.Out, start: start}
	if err := s.waitCluster(ctx, name, wait, p, clusterCreated); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "Cluster %s created in %s\n", name, since(start))
	return nil
}

func plural(n int32, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func newClusterListCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the project's clusters",
		Example: `  wharf cluster list
  wharf cluster list -f value -c name -c status`,
		Args: cobra.NoArgs,
		RunE: sf.withService(func(ctx context.Context, s *service, _ []string) error {
			ns, cols := s.project, clusterListColumns
			if all {
				ns, cols = "", append([]string{"project_id"}, clusterListColumns...)
			}
			list, err := s.wharf.Clusters(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return s.explain(err, "cluster", "", nil)
			}
			rs := make([]record, len(list.Items))
			for i := range list.Items {
				rs[i] = clusterRecord(&list.Items[i], nil)
			}
			return out.printList(stdio.Out, rs, cols)
		}),
	}
	out.register(cmd)
	cmd.Flags().BoolVar(&all, "all-projects", false, "list the clusters of every project")
	return cmd
}

func newClusterShowCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a cluster's fields (status, addresses, labels, ...)",
		Example: `  wharf cluster show demo
  wharf cluster show demo -f value -c api_address
  wharf cluster show demo -f json`,
		Args: exactArgs(1, "NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			c, err := s.wharf.Clusters(s.project).Get(ctx, args[0], metav1.GetOptions{})
			if err != nil {
				return s.explain(err, "cluster", args[0], nil)
			}
			// The template gives the labels the cluster runs with; a
			// template out of sight only leaves them out.
			t, _ := s.getTemplateOf(ctx, c)
			return out.printOne(stdio.Out, clusterRecord(c, t))
		}),
	}
	out.register(cmd)
	return cmd
}

func newClusterDeleteCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete clusters and every host they have",
		Long: `Delete clusters: the controller removes their hosts, then the cluster
object goes (DELETE_IN_PROGRESS until then). A cluster being created
(CREATE_IN_PROGRESS) cannot be deleted until it is CREATE_COMPLETE or
CREATE_FAILED.`,
		Example: `  wharf cluster delete demo --wait`,
		Args:    cobra.MinimumNArgs(1),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			return s.deleteClusters(ctx, stdio, args, w)
		}),
	}
	w.register(cmd, "until the clusters and their hosts are gone")
	return cmd
}

func (s *service) deleteClusters(ctx context.Context, stdio Stdio, names []string, w waitFlags) error {
	start := time.Now()
	var errs []error
	var accepted []string
	for _, name := range names {
		if err := s.wharf.Clusters(s.project).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			errs = append(errs, s.explain(err, "cluster", name, nil))
			continue
		}
		accepted = append(accepted, name)
		fmt.Fprintf(stdio.Out, "Request to delete cluster %s has been accepted.\n", name)
	}
	for _, name := range accepted {
		if !w.wait {
			break
		}
		p := &progress{out: stdio.Out, start: start, skipOld: true, quiet: len(accepted) > 1}
		if err := s.waitClusterGone(ctx, name, w.timeoutOr(defaultWaitTimeout), p); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdio.Out, "Cluster %s deleted in %s\n", name, since(start))
	}
	return errors.Join(errs...)
}

// exactArgs is cobra.ExactArgs with the arguments' names in the error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s wants %s (see --help)", cmd.CommandPath(), names)
		}
		return nil
	}
}
