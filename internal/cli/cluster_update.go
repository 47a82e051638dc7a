package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

func newClusterUpdateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "update NAME replace|add|remove ATTRIBUTE[=VALUE]...",
		Short: "Change a cluster's node count or labels, as openstack coe cluster update",
		Long: `Change a cluster's attributes, with openstack's operations:

  replace node_count=N        resize the default node group (as wharf cluster resize)
  replace labels=k=v,k2=v2    set exactly these labels
  add labels=k=v              add or change labels
  add labels/k=v              add or change one label
  remove labels/k             remove one label
  remove labels               remove every label (the template's apply again)`,
		Example: `  wharf cluster update demo replace node_count=3 --wait
  wharf cluster update demo add labels/auto_healing_enabled=true`,
		Args: cobra.MinimumNArgs(3),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			return s.updateCluster(ctx, stdio, args[0], args[1], args[2:], w)
		}),
	}
	w.register(cmd, "until the change is done (UPDATE_COMPLETE)")
	return cmd
}

func (s *service) updateCluster(ctx context.Context, stdio Stdio, name, op string, items []string, w waitFlags) error {
	c, err := s.wharf.Clusters(s.project).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return s.explain(err, "cluster", name, nil)
	}
	spec := c.Spec.DeepCopy()
	err = applyUpdate(op, items, map[string]attr{
		"node_count": {set: func(v string) error { return setInt32(&spec.NodeCount, v) }},
		"labels":     {labels: &spec.Labels},
	})
	if err != nil {
		return err
	}
	start := time.Now()
	if spec.NodeCount != c.Spec.NodeCount {
		if err := s.resizeWorkerGroup(ctx, name, spec.NodeCount, nil); err != nil {
			return err
		}
	}
	updated, err := s.updateClusterSpec(ctx, name, func(cs *wharfv1.ClusterSpec) {
		cs.NodeCount, cs.Labels = spec.NodeCount, spec.Labels
	})
	if err != nil {
		return err
	}
	return s.afterClusterUpdate(ctx, stdio, updated, start, w)
}

func (s *service) afterClusterUpdate(ctx context.Context, stdio Stdio, c *wharfv1.Cluster, start time.Time, w waitFlags) error {
	if !w.wait {
		fmt.Fprintf(stdio.Out, "Request to update cluster %s has been accepted.\n", c.Name)
		return nil
	}
	p := &progress{out: stdio.Out, start: start, skipOld: true}
	if err := s.waitCluster(ctx, c.Name, w.timeoutOr(defaultWaitTimeout), p, clusterUpdated(c.Generation)); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "Cluster %s updated in %s\n", c.Name, since(start))
	return nil
}

// updateClusterSpec changes a cluster's spec, again on a conflicting write.
func (s *service) updateClusterSpec(ctx context.Context, name string, change func(*wharfv1.ClusterSpec)) (*wharfv1.Cluster, error) {
	var out *wharfv1.Cluster
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := s.wharf.Clusters(s.project).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&c.Spec)
		out, err = s.wharf.Clusters(s.project).Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	return out, s.explain(err, "cluster", name, clusterFlags)
}

// resizeWorkerGroup sets the size of a cluster's default node group.
// The controller makes the group with the cluster; until then the
// cluster's nodeCount alone says the size.
func (s *service) resizeWorkerGroup(ctx context.Context, cluster string, n int32, remove []string) error {
	_, err := s.resizeGroup(ctx, resources.DefaultWorkerGroup(cluster), n, remove)
	if apierrors.IsNotFound(err) && len(remove) == 0 {
		return nil
	}
	return err
}

// resizeGroup sets a node group's nodeCount and the hosts to remove first.
func (s *service) resizeGroup(ctx context.Context, group string, n int32, remove []string) (*wharfv1.NodeGroup, error) {
	var out *wharfv1.NodeGroup
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g, err := s.wharf.NodeGroups(s.project).Get(ctx, group, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(remove) > 0 && int(g.Spec.NodeCount-n) < len(remove) {
			return fmt.Errorf("--nodes-to-remove names %d hosts, but resizing node group %s from %d to %d removes %d",
				len(remove), g.Name, g.Spec.NodeCount, n, max(0, g.Spec.NodeCount-n))
		}
		g.Spec.NodeCount, g.Spec.NodesToRemove = n, remove
		out, err = s.wharf.NodeGroups(s.project).Update(ctx, g, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("node group %q not found in project %q (the controller makes a cluster's default groups): %w", group, s.project, err)
	}
	return out, s.explain(err, "node group", group, nodeGroupFlags)
}

// attr is one attribute `update` can change: a scalar (set, remove) or
// a map of labels (labels, labels/KEY).
type attr struct {
	set    func(value string) error
	add    func(value string) error // when add is not set's synonym (lists)
	remove func()                   // nil: cannot be removed
	labels *map[string]string
}

// applyUpdate applies openstack's `update OP ATTRIBUTE[=VALUE]...` to attrs.
func applyUpdate(op string, items []string, attrs map[string]attr) error {
	if op != "replace" && op != "add" && op != "remove" {
		return fmt.Errorf("unknown operation %q: use replace, add or remove", op)
	}
	for _, it := range items {
		path, value, hasValue := strings.Cut(strings.TrimPrefix(it, "/"), "=")
		name, key, hasKey := strings.Cut(path, "/")
		a, ok := attrs[name]
		if !ok {
			return fmt.Errorf("cannot update %q: attributes are %s", name, strings.Join(sortedKeys(attrs), ", "))
		}
		switch {
		case op == "remove" && hasValue:
			return fmt.Errorf("%s: remove takes attribute names only", it)
		case op != "remove" && !hasValue:
			return fmt.Errorf("%s: want %s=VALUE", it, path)
		case hasKey && a.labels == nil:
			return fmt.Errorf("%s: %s has no keys", it, name)
		}
		if err := a.apply(op, key, value, hasKey); err != nil {
			return fmt.Errorf("%s: %w", it, err)
		}
	}
	return nil
}

func (a attr) apply(op, key, value string, hasKey bool) error {
	if a.labels == nil {
		switch {
		case op == "remove" && a.remove == nil:
			return errors.New("cannot be removed")
		case op == "remove":
			a.remove()
			return nil
		case op == "add" && a.add != nil:
			return a.add(value)
		}
		return a.set(value)
	}
	m := *a.labels
	switch {
	case op == "remove" && hasKey:
		if _, ok := m[key]; !ok {
			return fmt.Errorf("no label %q", key)
		}
		delete(m, key)
	case op == "remove":
		m = nil
	case hasKey:
		if m == nil {
			m = map[string]string{}
		}
		m[key] = value
	default:
		parsed, err := parseLabels([]string{value})
		if err != nil {
			return err
		}
		if op == "add" && m != nil {
			maps.Copy(m, parsed)
		} else {
			m = parsed
		}
	}
	*a.labels = m
	return nil
}

func setInt32(p *int32, v string) error {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return fmt.Errorf("want a number, not %q", v)
	}
	*p = int32(n)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
