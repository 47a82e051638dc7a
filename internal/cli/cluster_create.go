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

type clusterCreateOptions struct {
	template    string
	masterCount int32
	nodeCount   int32
	labels      []string
	mergeLabels bool
	timeout     string
	fromBackup  string
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
  wharf cluster create ci --template ops/k8s-small --labels auto_healing_enabled=true --merge-labels
  wharf cluster create demo2 --template k8s-local --from-backup demo/demo-20261208 --wait`,
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
	f.StringVar(&o.fromBackup, "from-backup", "", "[CLUSTER/]BACKUP: the new cluster (new hosts, new credentials) starts with the backup's objects")
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
	from, err := s.backupToRestore(ctx, o.fromBackup)
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
			FromBackup: from,
		},
	}
	start := time.Now()
	created, err := s.wharf.Clusters(s.project).Create(ctx, c, metav1.CreateOptions{})
	if err != nil {
		return s.explain(err, "cluster", name, clusterFlags)
	}
	if from != "" {
		if err := s.checkRestore(ctx, name, from); err != nil {
			return err
		}
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
