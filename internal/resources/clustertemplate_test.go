package resources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newClusterTemplate(mutate ...func(*wharfv1.ClusterTemplate)) *wharfv1.ClusterTemplate {
	t := &wharfv1.ClusterTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "k8s-local", Namespace: "default"},
		Spec:       wharfv1.ClusterTemplateSpec{COE: "kubernetes"},
	}
	for _, m := range mutate {
		m(t)
	}
	return t
}

func TestClusterTemplateDefaults(t *testing.T) {
	got := newClusterTemplate(func(t *wharfv1.ClusterTemplate) {
		t.Spec.SSH = &wharfv1.SSHHosts{Hosts: []string{"h"}}
	})
	ClusterTemplates().Default(got)
	want := wharfv1.ClusterTemplateSpec{
		COE: "kubernetes", Provider: "local",
		Network: wharfv1.Network{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"},
		SSH:     &wharfv1.SSHHosts{Hosts: []string{"h"}, User: "root"},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestClusterTemplateValidation(t *testing.T) {
	ssh := func(t *wharfv1.ClusterTemplate) {
		t.Spec.Provider = "ssh"
		t.Spec.SSH = &wharfv1.SSHHosts{Hosts: []string{"10.0.0.5", "m2:2222"}, KeySecret: "key"}
	}
	tests := []struct {
		name   string
		mutate func(*wharfv1.ClusterTemplate)
		want   []wantErr
		detail string // of the first wanted error, when set
	}{
		{name: "minimal"},
		{name: "everything", mutate: func(t *wharfv1.ClusterTemplate) {
			ssh(t)
			t.Spec.Flavor = wharfv1.Flavor{CPU: "500m", Memory: "4Gi"}
			t.Spec.Network = wharfv1.Network{HostCIDR: "10.123.0.0/24", PodCIDR: "10.100.0.0/16", ServiceCIDR: "10.200.0.0/16"}
			t.Spec.Labels = map[string]string{"auto_healing_enabled": "true", "kube_tag": "v1.33 with spaces"}
		}},
		{name: "coe missing", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.COE = "" }, want: []wantErr{required("spec.coe")}},
		{name: "coe swarm", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.COE = "swarm" },
			want: []wantErr{notSupported("spec.coe")}, detail: `spec.coe: Unsupported value: "swarm": supported values: "kubernetes"`},
		{name: "provider unknown", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Provider = "heat" }, want: []wantErr{notSupported("spec.provider")}},
		{name: "cpu not a quantity", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Flavor.CPU = "two" }, want: []wantErr{invalid("spec.flavor.cpu")}},
		{name: "memory zero", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Flavor.Memory = "0" }, want: []wantErr{invalid("spec.flavor.memory")}},
		{name: "pod CIDR garbage", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Network.PodCIDR = "10.244.0.0" }, want: []wantErr{invalid("spec.network.podCIDR")}},
		{name: "pod CIDR too small", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Network.PodCIDR = "10.244.0.0/25" }, want: []wantErr{invalid("spec.network.podCIDR")}},
		{name: "service CIDR not a network", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Network.ServiceCIDR = "10.96.0.1/12" }, want: []wantErr{invalid("spec.network.serviceCIDR")}},
		{name: "service CIDR IPv6", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Network.ServiceCIDR = "fd00::/108" }, want: []wantErr{invalid("spec.network.serviceCIDR")}},
		{name: "host CIDR overlaps pods", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Network.HostCIDR = "10.244.1.0/24" }, want: []wantErr{invalid("spec.network.podCIDR")}},
		{name: "host CIDR too small", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Network.HostCIDR = "10.123.0.4/31" }, want: []wantErr{invalid("spec.network.hostCIDR")}},
		{name: "ssh without machines", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Provider = "ssh" }, want: []wantErr{required("spec.ssh")}},
		{name: "ssh settings for local", mutate: func(t *wharfv1.ClusterTemplate) { ssh(t); t.Spec.Provider = "local" }, want: []wantErr{forbidden("spec.ssh")}},
		{name: "ssh bad hosts", mutate: func(t *wharfv1.ClusterTemplate) {
			ssh(t)
			t.Spec.SSH.Hosts = []string{"a", "a", "root@b"}
			t.Spec.SSH.KeySecret = ""
		}, want: []wantErr{duplicate("spec.ssh.hosts[1]"), invalid("spec.ssh.hosts[2]"), required("spec.ssh.keySecret")}},
		{name: "ssh no hosts", mutate: func(t *wharfv1.ClusterTemplate) { ssh(t); t.Spec.SSH.Hosts = nil }, want: []wantErr{required("spec.ssh.hosts")}},
		{name: "label key", mutate: func(t *wharfv1.ClusterTemplate) { t.Spec.Labels = map[string]string{"bad key": "v"} }, want: []wantErr{invalid("spec.labels[bad key]")}},
		{name: "name", mutate: func(t *wharfv1.ClusterTemplate) { t.Name = "K8s_Local" }, want: []wantErr{invalid("metadata.name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := newClusterTemplate()
			if tt.mutate != nil {
				tt.mutate(tpl)
			}
			ClusterTemplates().Default(tpl)
			errs := ClusterTemplates().Validate(tpl)
			checkErrs(t, errs, tt.want...)
			if tt.detail != "" && (len(errs) == 0 || errs[0].Error() != tt.detail) {
				t.Errorf("first error %v, want %q", errs, tt.detail)
			}
		})
	}
}

func TestClusterTemplateRow(t *testing.T) {
	tpl := newClusterTemplate(func(t *wharfv1.ClusterTemplate) { t.CreationTimestamp = ago(90 * time.Second) })
	ClusterTemplates().Default(tpl)
	got := clusterTemplateRow(tpl, testNow)
	if diff := cmp.Diff([]any{"k8s-local", "kubernetes", "local", "false", "90s"}, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestClusterTemplateInUse(t *testing.T) {
	ctx := context.Background()
	cluster := func(ns, name, template string) runtime.Object {
		return &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: wharfv1.ClusterSpec{Template: template}}
	}
	objs := memObjects{wharfv1.SchemeGroupVersion.WithResource("clusters"): {
		cluster("default", "a", "k8s-local"), cluster("team", "b", "default/k8s-local"), cluster("team", "c", "k8s-local"),
	}}
	tpl := newClusterTemplate() // private now, public when team/b was made
	err := ClusterTemplates().ValidateDelete(ctx, tpl, objs)
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `cluster template "k8s-local" is used by clusters a, team/b: delete them first`) {
		t.Errorf("delete: %v", err)
	}
	if err := ClusterTemplates().ValidateDelete(ctx, newClusterTemplate(func(t *wharfv1.ClusterTemplate) { t.Name = "unused" }), objs); err != nil {
		t.Errorf("delete of an unused template: %v", err)
	}
	for _, tt := range []struct {
		name    string
		change  func(*wharfv1.ClusterTemplate)
		refused bool
	}{
		{"public", func(t *wharfv1.ClusterTemplate) { t.Spec.Public, t.Spec.Hidden = true, true }, false},
		{"labels", func(t *wharfv1.ClusterTemplate) { t.Spec.Labels = map[string]string{"a": "b"} }, true},
		{"flavor", func(t *wharfv1.ClusterTemplate) { t.Spec.Flavor.CPU = "1" }, true},
	} {
		changed := tpl.DeepCopy()
		tt.change(changed)
		if err := ClusterTemplates().Admit(ctx, changed, tpl, objs); apierrors.IsConflict(err) != tt.refused {
			t.Errorf("%s change: %v, want refused %v", tt.name, err, tt.refused)
		}
	}
}
