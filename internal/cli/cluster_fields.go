package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

// clusterListColumns are `wharf cluster list`'s columns, as openstack's.
var clusterListColumns = []string{"uuid", "name", "node_count", "master_count", "status", "health_status"}

// clusterFlags names the flags behind a Cluster's fields, for errors.
var clusterFlags = map[string]string{
	"spec.template":      "--template",
	"spec.masterCount":   "--master-count",
	"spec.nodeCount":     "--node-count",
	"spec.labels":        "--labels",
	"spec.createTimeout": "--timeout",
	"spec.fromBackup":    "--from-backup",
}

// clusterRecord is a cluster with Magnum's field names; t (its template,
// may be nil) gives the labels it runs with.
func clusterRecord(c *wharfv1.Cluster, t *wharfv1.ClusterTemplate) record {
	added, overridden, skipped := labelChanges(c, t)
	timeout := int64(0)
	if c.Spec.CreateTimeout != nil {
		timeout = int64(c.Spec.CreateTimeout.Duration.Round(time.Minute) / time.Minute)
	}
	s := &c.Status
	return record{
		{"uuid", string(c.UID)},
		{"name", c.Name},
		{"project_id", c.Namespace},
		{"cluster_template_id", c.Spec.Template},
		{"status", s.Status},
		{"status_reason", s.StatusReason},
		{"health_status", s.HealthStatus},
		{"health_status_reason", s.HealthStatusReason},
		{"create_timeout", timeout},
		{"master_count", int64(c.Spec.MasterCount)},
		{"node_count", int64(c.Spec.NodeCount)},
		{"labels", resources.EffectiveLabels(c, t)},
		{"labels_overridden", overridden},
		{"labels_added", added},
		{"labels_skipped", skipped},
		{"api_address", s.APIAddress},
		{"master_addresses", s.MasterAddresses},
		{"node_addresses", s.NodeAddresses},
		{"lb_cidr", s.LoadBalancerCIDR},
		{"load_balancers", loadBalancerLines(s.LoadBalancers)},
		{"coe_version", s.COEVersion},
		{"container_version", s.ContainerVersion},
		{"faults", s.Faults},
		{"from_backup", c.Spec.FromBackup},
		{"created_at", timestamp(&c.CreationTimestamp)},
		{"updated_at", timestamp(s.UpdatedAt)},
	}
}

// labelChanges says how a cluster's own labels differ from its
// template's, as Magnum shows it; nil when the cluster runs with the
// template's.
func labelChanges(c *wharfv1.Cluster, t *wharfv1.ClusterTemplate) (added, overridden, skipped map[string]string) {
	if t == nil || len(c.Spec.Labels) == 0 {
		return nil, nil, nil
	}
	added, overridden, skipped = map[string]string{}, map[string]string{}, map[string]string{}
	for k, v := range c.Spec.Labels {
		tv, ok := t.Spec.Labels[k]
		switch {
		case !ok:
			added[k] = v
		case tv != v:
			overridden[k] = v
		}
	}
	for k, v := range t.Spec.Labels {
		if _, ok := c.Spec.Labels[k]; !ok {
			skipped[k] = v
		}
	}
	return added, overridden, skipped
}

func timestamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// parseLabels reads --labels values: "k=v,k2=v2", repeatable.
func parseLabels(values []string) (map[string]string, error) {
	var out map[string]string
	for _, v := range values {
		for _, kv := range strings.Split(v, ",") {
			if kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("label %q: want key=value", kv)
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = val
		}
	}
	return out, nil
}

// parseTimeout reads --timeout: minutes, as openstack takes it, or a
// Go duration ("90s", "1h").
func parseTimeout(v string) (*metav1.Duration, error) {
	if v == "" {
		return nil, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		return &metav1.Duration{Duration: time.Duration(n) * time.Minute}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("--timeout %q: want minutes (60) or a duration (90s, 1h)", v)
	}
	return &metav1.Duration{Duration: d}, nil
}

// loadBalancerLines shows a cluster's load balancers one per line:
// "namespace/name address ports", "<pending>" for no address yet.
func loadBalancerLines(lbs []wharfv1.LoadBalancer) []string {
	var out []string
	for _, lb := range lbs {
		addr := lb.Address
		if addr == "" {
			addr = "<pending>"
		}
		out = append(out, strings.TrimSpace(lb.Service+" "+addr+" "+strings.Join(lb.Ports, ",")))
	}
	return out
}
