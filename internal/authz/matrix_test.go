package authz

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// TestDefaultRolesMatrix checks the default roles, after aggregation,
// against what upstream Kubernetes answers (kubectl auth can-i on a
// kubeadm cluster; the rules in bootstrappolicy/testdata/cluster-roles.yaml).
// admin, edit and view are bound by RoleBindings in "team", as they are
// meant to be; cluster-admin by system:masters; the node goes through the
// Node authorizer first, as kube-apiserver's Node,RBAC modes.
func TestDefaultRolesMatrix(t *testing.T) {
	p := newMemPolicy().withDefaults()
	p.addRoleBinding(roleBinding("team", "alice-admin", "ClusterRole", "admin", userSubject("alice")))
	p.addRoleBinding(roleBinding("team", "bob-edit", "ClusterRole", "edit", userSubject("bob")))
	p.addRoleBinding(roleBinding("team", "carol-view", "ClusterRole", "view", userSubject("carol")))
	pods := podGraph{
		pod("team", "p1", "n1", withSecretVolume("s1")),
		pod("team", "p2", "n2", withSecretVolume("s2")),
	}
	chain := Chain(NewNode(pods), NewRBAC(p))

	users := []user.Info{
		userInfo("root", user.SystemPrivilegedGroup),
		userInfo("alice"),
		userInfo("bob"),
		userInfo("carol"),
		userInfo("system:node:n1", user.NodesGroup),
	}
	type want struct{ root, admin, edit, view, node bool }
	const Y, N = true, false
	tests := []struct {
		name  string
		attrs authorizer.AttributesRecord // without the user
		want  want
	}{
		{"get pod", res("get", "", "pods", "", "team", "p1"), want{Y, Y, Y, Y, Y}},
		// Nodes may list every pod (upstream without AuthorizeNodeWithSelectors).
		{"list pods", res("list", "", "pods", "", "team", ""), want{Y, Y, Y, Y, Y}},
		{"list pods elsewhere", res("list", "", "pods", "", "other", ""), want{Y, N, N, N, Y}},
		{"list pods cluster-wide", res("list", "", "pods", "", "", ""), want{Y, N, N, N, Y}},
		// Upstream nodes create mirror pods; Wharf has none.
		{"create pod", res("create", "", "pods", "", "team", ""), want{Y, Y, Y, N, N}},
		// The node deletes the pods it ran once they terminated.
		{"delete own pod", res("delete", "", "pods", "", "team", "p1"), want{Y, Y, Y, N, Y}},
		{"delete another node's pod", res("delete", "", "pods", "", "team", "p2"), want{Y, Y, Y, N, N}},
		// view cannot read secrets: they hold service account tokens, so
		// reading them escalates (upstream's aggregate-to-view has none).
		{"get secret", res("get", "", "secrets", "", "team", "s1"), want{Y, Y, Y, N, Y}},
		{"get another node's secret", res("get", "", "secrets", "", "team", "s2"), want{Y, Y, Y, N, N}},
		{"list secrets", res("list", "", "secrets", "", "team", ""), want{Y, Y, Y, N, N}},
		{"create secret", res("create", "", "secrets", "", "team", ""), want{Y, Y, Y, N, N}},
		{"delete secret", res("delete", "", "secrets", "", "team", "s1"), want{Y, Y, Y, N, N}},
		{"get deployment", res("get", "apps", "deployments", "", "team", "d"), want{Y, Y, Y, Y, N}},
		{"list deployments", res("list", "apps", "deployments", "", "team", ""), want{Y, Y, Y, Y, N}},
		{"create deployment", res("create", "apps", "deployments", "", "team", ""), want{Y, Y, Y, N, N}},
		{"delete deployment", res("delete", "apps", "deployments", "", "team", "d"), want{Y, Y, Y, N, N}},
		{"scale deployment", res("update", "apps", "deployments", "scale", "team", "d"), want{Y, Y, Y, N, N}},
		// edit cannot read nor write roles and bindings: only
		// aggregate-to-admin has rbac.authorization.k8s.io rules.
		{"get role", res("get", "rbac.authorization.k8s.io", "roles", "", "team", "r"), want{Y, Y, N, N, N}},
		{"create role", res("create", "rbac.authorization.k8s.io", "roles", "", "team", ""), want{Y, Y, N, N, N}},
		{"list rolebindings", res("list", "rbac.authorization.k8s.io", "rolebindings", "", "team", ""), want{Y, Y, N, N, N}},
		{"delete rolebinding", res("delete", "rbac.authorization.k8s.io", "rolebindings", "", "team", "b"), want{Y, Y, N, N, N}},
		{"create clusterrolebinding", res("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""), want{Y, N, N, N, N}},
		// escalate and bind are in no default role but cluster-admin; admin
		// binds admin/edit/view because it holds their rules.
		{"escalate role", res("escalate", "rbac.authorization.k8s.io", "roles", "", "team", ""), want{Y, N, N, N, N}},
		{"bind clusterrole", res("bind", "rbac.authorization.k8s.io", "clusterroles", "", "team", "admin"), want{Y, N, N, N, N}},
		// A RoleBinding cannot grant cluster-scoped resources.
		{"get node", res("get", "", "nodes", "", "", "n1"), want{Y, N, N, N, Y}},
		{"list nodes", res("list", "", "nodes", "", "", ""), want{Y, N, N, N, Y}},
		{"create node", res("create", "", "nodes", "", "", ""), want{Y, N, N, N, Y}},
		{"update own node status", res("patch", "", "nodes", "status", "", "n1"), want{Y, N, N, N, Y}},
		{"update another node", res("update", "", "nodes", "", "", "n2"), want{Y, N, N, N, N}},
		{"delete node", res("delete", "", "nodes", "", "", "n1"), want{Y, N, N, N, N}},
		// Reading namespaces in a namespace's binding reads that namespace.
		{"get own namespace", res("get", "", "namespaces", "", "team", "team"), want{Y, Y, Y, Y, N}},
		{"list namespaces", res("list", "", "namespaces", "", "", ""), want{Y, N, N, N, N}},
		{"create namespace", res("create", "", "namespaces", "", "", ""), want{Y, N, N, N, N}},
		// Not even admin may delete the namespace it administers.
		{"delete own namespace", res("delete", "", "namespaces", "", "team", "team"), want{Y, N, N, N, N}},
		{"exec", res("create", "", "pods", "exec", "team", "p1"), want{Y, Y, Y, N, N}},
		{"exec over websocket", res("get", "", "pods", "exec", "team", "p1"), want{Y, Y, Y, N, N}},
		{"logs", res("get", "", "pods", "log", "team", "p1"), want{Y, Y, Y, Y, N}},
		// Status is the system's: not even admin writes it.
		{"own pod status", res("patch", "", "pods", "status", "team", "p1"), want{Y, N, N, N, Y}},
		{"another node's pod status", res("patch", "", "pods", "status", "team", "p2"), want{Y, N, N, N, N}},
		// The wharf.dev/local provisioner on every node (RBAC, bound to
		// system:nodes): PVs, claims read-only, claims' status, classes.
		{"watch claims", res("watch", "", "persistentvolumeclaims", "", "", ""), want{Y, N, N, N, Y}},
		{"update claim", res("update", "", "persistentvolumeclaims", "", "team", "c"), want{Y, Y, Y, N, N}},
		{"claim status", res("update", "", "persistentvolumeclaims", "status", "team", "c"), want{Y, N, N, N, Y}},
		{"create PV", res("create", "", "persistentvolumes", "", "", ""), want{Y, N, N, N, Y}},
		{"delete PV", res("delete", "", "persistentvolumes", "", "", "pv"), want{Y, N, N, N, Y}},
		{"list storage classes", res("list", "storage.k8s.io", "storageclasses", "", "", ""), want{Y, N, N, N, Y}},
		{"create storage class", res("create", "storage.k8s.io", "storageclasses", "", "", ""), want{Y, N, N, N, N}},
		{"resource quota", res("create", "", "resourcequotas", "", "team", ""), want{Y, N, N, N, N}},
		{"own lease", res("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1"), want{Y, N, N, N, Y}},
		{"another node's lease", res("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2"), want{Y, N, N, N, N}},
		{"events", res("create", "", "events", "", "team", ""), want{Y, Y, Y, N, Y}},
		{"list events", res("list", "", "events", "", "team", ""), want{Y, Y, Y, Y, N}},
		// The same events in events.k8s.io are another group's resource:
		// upstream's admin, edit, view and nodes have no rule for it.
		{"list events.k8s.io events", res("list", "events.k8s.io", "events", "", "team", ""), want{Y, N, N, N, N}},
		{"create events.k8s.io events", res("create", "events.k8s.io", "events", "", "team", ""), want{Y, N, N, N, N}},
		// autoscaling's rules name no version: they cover v1 and v2.
		{"create autoscaler", res("create", "autoscaling", "horizontalpodautoscalers", "", "team", ""), want{Y, Y, Y, N, N}},
		{"get autoscaler status", res("get", "autoscaling", "horizontalpodautoscalers", "status", "team", "h"), want{Y, Y, Y, Y, N}},
		{"self subject review", res("create", "authentication.k8s.io", "selfsubjectreviews", "", "", ""), want{Y, Y, Y, Y, Y}},
		{"endpointslices", res("list", "discovery.k8s.io", "endpointslices", "", "team", ""), want{Y, Y, Y, Y, Y}},
		// system:public-info-viewer and system:discovery are bound to
		// system:authenticated.
		{"/healthz", url("get", "/healthz"), want{Y, Y, Y, Y, Y}},
		{"/version", url("get", "/version"), want{Y, Y, Y, Y, Y}},
		{"/openapi/v3", url("get", "/openapi/v3"), want{Y, Y, Y, Y, Y}},
		{"/metrics", url("get", "/metrics"), want{Y, N, N, N, N}},
		{"post /healthz", url("post", "/healthz"), want{Y, N, N, N, N}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wants := []bool{tt.want.root, tt.want.admin, tt.want.edit, tt.want.view, tt.want.node}
			for i, u := range users {
				attrs := tt.attrs
				attrs.User = u
				d, reason, _ := chain.Authorize(context.Background(), attrs)
				if got := d == authorizer.DecisionAllow; got != wants[i] {
					t.Errorf("%s: allowed %v (%v: %s), want %v", u.GetName(), got, d, reason, wants[i])
				}
			}
		})
	}
}

func res(verb, group, resource, sub, ns, name string) authorizer.AttributesRecord {
	return resourceAttrs(nil, verb, group, resource, sub, ns, name)
}

func url(verb, path string) authorizer.AttributesRecord { return pathAttrs(nil, verb, path) }

type podOption func(*corev1.Pod)

func pod(ns, name, node string, opts ...podOption) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: node, ServiceAccountName: "default", Containers: []corev1.Container{{Name: "c"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withSecretVolume(name string) podOption {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: name},
		}})
	}
}
