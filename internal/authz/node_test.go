package authz

import (
	"context"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func TestNodeAuthorizer(t *testing.T) {
	pods := podGraph{
		pod("team", "web", "n1", withSecretVolume("tls"), func(p *corev1.Pod) {
			p.Spec.ServiceAccountName = "web"
			p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "env"}}}}
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
				corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projected"}}},
				}}}})
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Env: []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "init-key"}, Key: "k"},
			}}}}}
		}),
		pod("team", "db", "n2", withSecretVolume("db-password")),
	}
	n := NewNode(volumeGraph{pods, map[string]string{"team/data": "pv-data", "team/other": "pv-other"}},
		WithNodeReadable("secrets", "kube-system", "wharf-heartbeat-key"))
	n1 := userInfo("system:node:n1", user.NodesGroup)
	noRelation := "no relationship found between node 'n1' and this object"
	tests := []struct {
		name   string
		u      user.Info
		attrs  authorizer.AttributesRecord
		want   authorizer.Decision
		reason string
	}{
		{"own pod's secret", n1, res("get", "", "secrets", "", "team", "tls"), authorizer.DecisionAllow, ""},
		{"own pod's secret, watched by name", n1, res("watch", "", "secrets", "", "team", "tls"), authorizer.DecisionAllow, ""},
		{"image pull secret", n1, res("get", "", "secrets", "", "team", "registry"), authorizer.DecisionAllow, ""},
		{"init container's env secret", n1, res("get", "", "secrets", "", "team", "init-key"), authorizer.DecisionAllow, ""},
		{"another node's pod's secret", n1, res("get", "", "secrets", "", "team", "db-password"), authorizer.DecisionDeny, noRelation},
		{"secret no pod uses", n1, res("get", "", "secrets", "", "team", "unused"), authorizer.DecisionDeny, noRelation},
		{"same name in another namespace", n1, res("get", "", "secrets", "", "other", "tls"), authorizer.DecisionDeny, noRelation},
		{"listing secrets", n1, res("list", "", "secrets", "", "team", ""), authorizer.DecisionDeny, "node 'n1' can only read individual secrets of its pods"},
		{"writing a pod's secret", n1, res("update", "", "secrets", "", "team", "tls"), authorizer.DecisionDeny, "node 'n1' can only read secrets"},
		{"readable by option", n1, res("get", "", "secrets", "", "kube-system", "wharf-heartbeat-key"), authorizer.DecisionAllow, ""},
		{"TLS secret list without the option", n1, withFields(res("list", "", "secrets", "", "", ""), "type=kubernetes.io/tls"), authorizer.DecisionDeny, "node 'n1' can only read individual secrets of its pods"},
		{"envFrom configmap", n1, res("get", "", "configmaps", "", "team", "env"), authorizer.DecisionAllow, ""},
		{"projected configmap", n1, res("get", "", "configmaps", "", "team", "projected"), authorizer.DecisionAllow, ""},
		{"configmap no pod uses", n1, res("get", "", "configmaps", "", "team", "other"), authorizer.DecisionDeny, noRelation},
		{"pod's claim", n1, res("get", "", "persistentvolumeclaims", "", "team", "data"), authorizer.DecisionAllow, ""},
		{"pod's claim status", n1, res("patch", "", "persistentvolumeclaims", "status", "team", "data"), authorizer.DecisionAllow, ""},
		{"pod's claim's volume", n1, res("get", "", "persistentvolumes", "", "", "pv-data"), authorizer.DecisionAllow, ""},
		// Claims and volumes past the pods' are RBAC's to decide (the
		// local provisioner's role), as upstream.
		{"another claim's volume", n1, res("get", "", "persistentvolumes", "", "", "pv-other"), authorizer.DecisionNoOpinion, noRelation},
		{"creating a volume", n1, res("create", "", "persistentvolumes", "", "", ""), authorizer.DecisionNoOpinion, "node 'n1' can only get persistentvolumes bound to the claims of its pods"},
		{"claim no pod uses", n1, res("get", "", "persistentvolumeclaims", "", "team", "other"), authorizer.DecisionNoOpinion, noRelation},
		{"watching claims", n1, res("watch", "", "persistentvolumeclaims", "", "", ""), authorizer.DecisionNoOpinion, "node 'n1' can only get persistentvolumeclaims of its pods and update their status"},
		{"pod's service account token", n1, res("create", "", "serviceaccounts", "token", "team", "web"), authorizer.DecisionAllow, ""},
		{"another service account's token", n1, res("create", "", "serviceaccounts", "token", "team", "default"), authorizer.DecisionDeny, noRelation},
		{"own node", n1, res("update", "", "nodes", "", "", "n1"), authorizer.DecisionAllow, ""},
		{"another node", n1, res("update", "", "nodes", "", "", "n2"), authorizer.DecisionDeny, "node 'n1' is not allowed to modify node 'n2'"},
		{"another node's status", n1, res("patch", "", "nodes", "status", "", "n2"), authorizer.DecisionDeny, "node 'n1' is not allowed to modify node 'n2'"},
		{"deleting a node", n1, res("delete", "", "nodes", "", "", "n1"), authorizer.DecisionDeny, "node 'n1' cannot delete nodes"},
		{"own lease", n1, res("update", "coordination.k8s.io", "leases", "", NodeLeaseNamespace, "n1"), authorizer.DecisionAllow, ""},
		{"creating a lease", n1, res("create", "coordination.k8s.io", "leases", "", NodeLeaseNamespace, ""), authorizer.DecisionAllow, ""},
		{"another node's lease", n1, res("update", "coordination.k8s.io", "leases", "", NodeLeaseNamespace, "n2"), authorizer.DecisionDeny, "node 'n1' can only access node lease with the same name as the requesting node"},
		{"lease elsewhere", n1, res("update", "coordination.k8s.io", "leases", "", "kube-system", "n1"), authorizer.DecisionDeny, `node 'n1' can only access leases in the "kube-node-lease" system namespace`},
		{"own pod's status", n1, res("update", "", "pods", "status", "team", "web"), authorizer.DecisionAllow, ""},
		{"another node's pod's status", n1, res("update", "", "pods", "status", "team", "db"), authorizer.DecisionDeny, noRelation},
		{"evicting own pod", n1, res("create", "", "pods", "eviction", "team", "web"), authorizer.DecisionAllow, ""},
		{"creating a pod", n1, res("create", "", "pods", "", "team", ""), authorizer.DecisionDeny, "node 'n1' cannot create pods"},
		{"patching a pod", n1, res("patch", "", "pods", "", "team", "web"), authorizer.DecisionDeny, "node 'n1' cannot patch pods"},
		{"events", n1, res("create", "", "events", "", "team", ""), authorizer.DecisionAllow, ""},
		{"services", n1, res("watch", "", "services", "", "", ""), authorizer.DecisionAllow, ""},
		// Left to RBAC: no opinion.
		{"deployments", n1, res("list", "apps", "deployments", "", "", ""), authorizer.DecisionNoOpinion, ""},
		{"non-resource", n1, url("get", "/healthz"), authorizer.DecisionNoOpinion, ""},
		{"not a node", userInfo("system:node:n1"), res("get", "", "secrets", "", "team", "tls"), authorizer.DecisionNoOpinion, ""},
		{"node without a name", userInfo("system:node:", user.NodesGroup), res("get", "", "pods", "", "team", "web"), authorizer.DecisionNoOpinion, `unknown node for user "system:node:"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := tt.attrs
			attrs.User = tt.u
			d, reason, err := n.Authorize(context.Background(), attrs)
			if err != nil || d != tt.want || reason != tt.reason {
				t.Errorf("Authorize = %v, %q, %v; want %v, %q", d, reason, err, tt.want, tt.reason)
			}
		})
	}
}

func withFields(a authorizer.AttributesRecord, sel string) authorizer.AttributesRecord {
	s := fields.ParseSelectorOrDie(sel)
	a.FieldSelectorRequirements = s.Requirements()
	return a
}

func TestNodeTLSSecretList(t *testing.T) {
	n := NewNode(podGraph{}, WithNodeTLSSecretList())
	n1 := userInfo("system:node:n1", user.NodesGroup)
	for _, tt := range []struct {
		attrs authorizer.AttributesRecord
		want  authorizer.Decision
	}{
		{withFields(res("list", "", "secrets", "", "", ""), "type=kubernetes.io/tls"), authorizer.DecisionAllow},
		{withFields(res("watch", "", "secrets", "", "", ""), "type==kubernetes.io/tls"), authorizer.DecisionAllow},
		{withFields(res("list", "", "secrets", "", "", ""), "type!=kubernetes.io/tls"), authorizer.DecisionDeny},
		{withFields(res("list", "", "secrets", "", "", ""), "type=Opaque"), authorizer.DecisionDeny},
		{res("list", "", "secrets", "", "", ""), authorizer.DecisionDeny},
		{withFields(res("list", "", "configmaps", "", "", ""), "type=kubernetes.io/tls"), authorizer.DecisionDeny},
	} {
		attrs := tt.attrs
		attrs.User = n1
		if d, reason, _ := n.Authorize(context.Background(), attrs); d != tt.want {
			t.Errorf("%s %s %v: %v (%s), want %v", attrs.Verb, attrs.Resource, attrs.FieldSelectorRequirements, d, reason, tt.want)
		}
	}
}

// TestNodeDenyOverridesRBAC: even if RBAC grants nodes every secret (as
// the system:node binding of Kubernetes before 1.8 did), the Node
// authorizer's deny comes first in the chain.
func TestNodeDenyOverridesRBAC(t *testing.T) {
	p := newMemPolicy().withDefaults()
	p.addClusterRoleBinding(clusterRoleBinding("old-nodes", "system:node", groupSubject(user.NodesGroup)))
	pods := podGraph{pod("team", "db", "n2", withSecretVolume("db-password"))}
	rbac := NewRBAC(p)
	attrs := res("get", "", "secrets", "", "team", "db-password")
	attrs.User = userInfo("system:node:n1", user.NodesGroup)
	if d, _, _ := rbac.Authorize(context.Background(), attrs); d != authorizer.DecisionAllow {
		t.Fatalf("RBAC alone: %v, want Allow (the test's premise)", d)
	}
	d, reason, _ := Chain(NewNode(pods), rbac).Authorize(context.Background(), attrs)
	if d != authorizer.DecisionDeny || reason != "no relationship found between node 'n1' and this object" {
		t.Errorf("Chain(node, rbac) = %v %q, want Deny", d, reason)
	}
}

func TestAdmitNodeCreate(t *testing.T) {
	n1 := userInfo("system:node:n1", user.NodesGroup)
	tests := []struct {
		name string
		u    user.Info
		obj  runtime.Object
		want string
	}{
		{"own node", n1, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, ""},
		{"another node", n1, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, `node "n1" is not allowed to modify node "n2"`},
		{"own lease", n1, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: "n1"}}, ""},
		{"another node's lease", n1, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: "n2"}}, "can only access node lease"},
		{"not a node", userInfo("admin"), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, ""},
		{"other kinds", n1, &rbacv1.Role{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AdmitNodeCreate(tt.u, tt.obj)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !apierrors.IsForbidden(err) {
				t.Fatalf("AdmitNodeCreate = %v, want Forbidden %q", err, tt.want)
			}
		})
	}
}
