package cli

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/testserver"
)

func TestTemplateCommands(t *testing.T) {
	e := newServiceEnv(t)
	if _, err := e.s.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out := e.must("cluster", "template", "create", "k8s-local", "--coe", "kubernetes", "--provider", "local", "--cpu", "2", "--memory", "4Gi")
	testserver.Contains(t, out, "| coe            | kubernetes", "| cpu            | 2 ", "| pod_cidr       | 10.244.0.0/16", "| public         | false")
	e.must("cluster", "template", "create", "old", "--coe", "kubernetes", "--hidden")
	e.must("cluster", "template", "create", "shared", "--coe", "kubernetes", "--public", "--project", "ops")
	e.must("cluster", "template", "create", "secret", "--coe", "kubernetes", "--project", "ops")
	e.must("cluster", "template", "create", "lab", "--coe", "kubernetes", "--provider", "ssh", "--ssh-host", "192.0.2.10", "--ssh-host", "192.0.2.11:2222", "--ssh-key-secret", "lab-key")

	if got := e.must("cluster", "template", "list", "-f", "value", "-c", "name", "-c", "provider"); got != "k8s-local local\nlab ssh\nops/shared local\n" {
		t.Errorf("list (own, public, not hidden):\n%s", got)
	}
	if got := e.must("cluster", "template", "list", "--hidden", "-f", "value", "-c", "name"); got != "k8s-local\nlab\nold\nops/shared\n" {
		t.Errorf("list --hidden:\n%s", got)
	}
	testserver.Contains(t, e.must("cluster", "template", "list"), "| uuid ", "| name       | coe        | provider | public |", "| ops/shared | kubernetes | local    | true   |")
	var shown map[string]any
	if err := json.Unmarshal([]byte(e.must("cluster", "template", "show", "lab", "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown["ssh_user"] != "root" || len(shown["ssh_hosts"].([]any)) != 2 || shown["public"] != false {
		t.Errorf("show lab: %v", shown)
	}
	if got := e.must("cluster", "template", "show", "ops/shared", "-f", "value", "-c", "project_id"); got != "ops\n" {
		t.Errorf("show ops/shared: %q", got)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"create", "swarm", "--coe", "swarm"}, []string{`--coe (spec.coe): Unsupported value: "swarm": supported values: "kubernetes"`}},
		{[]string{"create", "none"}, []string{"--coe (spec.coe): Required value"}},
		{[]string{"create", "ssh", "--coe", "kubernetes", "--provider", "ssh"}, []string{"--ssh-host (spec.ssh): Required value"}},
		{[]string{"create", "net", "--coe", "kubernetes", "--pod-cidr", "10.96.0.0/16"}, []string{"--service-cidr (spec.network.serviceCIDR)", "overlaps podCIDR"}},
		{[]string{"create", "big", "--coe", "kubernetes", "--memory", "lots"}, []string{"--memory (spec.flavor.memory)"}},
		{[]string{"create", "k8s-local", "--coe", "kubernetes"}, []string{`cluster template "k8s-local" already exists in project "default"`}},
		{[]string{"show", "ops/secret"}, []string{`cluster template "ops/secret" not found in project "default"`}},
		{[]string{"update", "k8s-local", "replace", "colour=red"}, []string{`cannot update "colour"`}},
		{[]string{"update", "k8s-local", "replace", "coe=swarm"}, []string{`--coe (spec.coe): Unsupported value: "swarm"`}},
		{[]string{"delete", "nope"}, []string{`cluster template "nope" not found in project "default"`}},
	} {
		e.fails(append([]string{"cluster", "template"}, tt.args...), tt.want...)
	}

	out = e.must("cluster", "template", "update", "k8s-local", "replace", "public=true", "memory=8Gi", "-f", "value", "-c", "public", "-c", "memory")
	if out != "true\n8Gi\n" {
		t.Errorf("update: %q", out)
	}
	e.must("cluster", "template", "update", "k8s-local", "add", "labels/auto_healing_enabled=true")
	if got := e.must("cluster", "template", "show", "k8s-local", "-f", "value", "-c", "labels"); got != "auto_healing_enabled=true\n" {
		t.Errorf("labels after update: %q", got)
	}
	e.must("cluster", "create", "demo", "--template", "k8s-local")
	e.fails([]string{"cluster", "template", "update", "k8s-local", "replace", "memory=1Gi"}, `cluster template "k8s-local" is used by clusters demo: only public and hidden may change`)
	e.must("cluster", "template", "update", "k8s-local", "replace", "hidden=true")
	if got := e.must("cluster", "template", "delete", "old", "lab"); got != "Request to delete cluster template old has been accepted.\nRequest to delete cluster template lab has been accepted.\n" {
		t.Errorf("delete: %q", got)
	}
	e.fails([]string{"cluster", "template", "delete", "k8s-local"}, `cluster template "k8s-local" is used by clusters demo: delete them first`)
}
