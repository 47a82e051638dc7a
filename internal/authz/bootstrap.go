package authz

import (
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Labels of the default policy, as upstream's bootstrappolicy. Its objects
// also carry the annotation rbac.authorization.kubernetes.io/autoupdate:
// "true", which lets the server reconcile them with a newer default at
// start unless an operator set it to "false".
const (
	BootstrapLabel      = "kubernetes.io/bootstrapping"
	BootstrapLabelValue = "rbac-defaults"
	AggregateToAdmin    = "rbac.authorization.k8s.io/aggregate-to-admin"
	AggregateToEdit     = "rbac.authorization.k8s.io/aggregate-to-edit"
	AggregateToView     = "rbac.authorization.k8s.io/aggregate-to-view"
)

const (
	legacyGroup         = ""
	appsGroup           = "apps"
	authenticationGroup = "authentication.k8s.io"
	authorizationGroup  = "authorization.k8s.io"
	autoscalingGroup    = "autoscaling"
	batchGroup          = "batch"
	certificatesGroup   = "certificates.k8s.io"
	coordinationGroup   = "coordination.k8s.io"
	discoveryGroup      = "discovery.k8s.io"
	eventsGroup         = "events.k8s.io"
	extensionsGroup     = "extensions"
	networkingGroup     = "networking.k8s.io"
	nodeGroup           = "node.k8s.io"
	policyGroup         = "policy"
	storageGroup        = "storage.k8s.io"
)

var (
	read      = []string{"get", "list", "watch"}
	write     = []string{"create", "update", "patch", "delete", "deletecollection"}
	readWrite = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)

// rule is upstream's NewRule(verbs...).Groups(groups...).Resources(...):
// its lists sorted, as upstream's builder leaves them.
func rule(verbs []string, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: sorted(verbs), APIGroups: sorted(groups), Resources: sorted(resources)}
}

func named(r rbacv1.PolicyRule, names ...string) rbacv1.PolicyRule {
	r.ResourceNames = sorted(names)
	return r
}

func urls(verbs []string, paths ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: sorted(verbs), NonResourceURLs: sorted(paths)}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func v(verbs ...string) []string   { return verbs }
func in(groups ...string) []string { return groups }

func eventsRule() rbacv1.PolicyRule {
	return rule(v("create", "update", "patch"), in(legacyGroup, eventsGroup), "events")
}

// NodeRules are the rules of system:node: upstream's NodeRules (which the
// Node authorizer narrows to the node's own objects) and what Wharf's
// agent reads besides, as kube-proxy and the ingress on each node.
func NodeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// Needed to check API access. These creates are non-mutating.
		rule(v("create"), in(authenticationGroup), "tokenreviews"),
		rule(v("create"), in(authorizationGroup), "subjectaccessreviews", "localsubjectaccessreviews"),
		// Services for pods' environment variables.
		rule(read, in(legacyGroup), "services"),
		// Nodes register and report status; the Node authorizer and
		// AdmitNodeCreate limit writes to the node's own object.
		rule(v("create", "get", "list", "watch"), in(legacyGroup), "nodes"),
		rule(v("update", "patch"), in(legacyGroup), "nodes/status"),
		rule(v("update", "patch"), in(legacyGroup), "nodes"),
		rule(v("create", "update", "patch"), in(legacyGroup), "events"),
		rule(read, in(legacyGroup), "pods"),
		// Upstream's mirror pods; Wharf's Node authorizer refuses creates.
		rule(v("create", "delete"), in(legacyGroup), "pods"),
		rule(v("update", "patch"), in(legacyGroup), "pods/status"),
		rule(v("create"), in(legacyGroup), "pods/eviction"),
		// Limited by the Node authorizer to those of the node's pods.
		rule(read, in(legacyGroup), "secrets", "configmaps"),
		rule(v("get"), in(legacyGroup), "persistentvolumeclaims", "persistentvolumes"),
		rule(v("get"), in(legacyGroup), "endpoints"),
		rule(v("create", "get", "list", "watch"), in(certificatesGroup), "certificatesigningrequests"),
		rule(v("get", "create", "update", "patch", "delete"), in(coordinationGroup), "leases"),
		rule(v("get"), in(storageGroup), "volumeattachments"),
		rule(v("create"), in(legacyGroup), "serviceaccounts/token"),
		rule(v("get", "update", "patch"), in(legacyGroup), "persistentvolumeclaims/status"),
		rule(read, in(storageGroup), "csidrivers"),
		rule(v("get", "create", "update", "patch", "delete"), in(storageGroup), "csinodes"),
		rule(read, in(nodeGroup), "runtimeclasses"),
		// Wharf: the agent is also the service proxy and the node's ingress.
		rule(read, in(discoveryGroup), "endpointslices"),
		rule(read, in(networkingGroup), "ingresses", "ingressclasses"),
	}
}

// LocalProvisionerRole is the ClusterRole of the nodes' built-in
// provisioner wharf.dev/local.
const LocalProvisionerRole = "system:wharf:local-provisioner"

// DefaultClusterRoles returns the ClusterRoles a new cluster gets, from
// upstream's bootstrap policy. admin, edit and view select the
// system:aggregate-to-* roles (and each other) as upstream; their rules are
// filled in already, as the aggregation controller would.
func DefaultClusterRoles() []*rbacv1.ClusterRole {
	roles := []*rbacv1.ClusterRole{
		{
			// The root role, which can do anything.
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"},
			Rules: []rbacv1.PolicyRule{
				rule(v("*"), in("*"), "*"),
				urls(v("*"), "*"),
			},
		},
		{
			// Enough to find out whether the server is ready and which API
			// versions it serves.
			ObjectMeta: metav1.ObjectMeta{Name: "system:discovery"},
			Rules: []rbacv1.PolicyRule{
				urls(v("get"), "/livez", "/readyz", "/healthz", "/version", "/version/",
					"/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*"),
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:monitoring"},
			Rules: []rbacv1.PolicyRule{
				urls(v("get"), "/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz",
					"/livez/*", "/readyz/*", "/healthz/*"),
			},
		},
		{
			// What a user needs to learn about itself.
			ObjectMeta: metav1.ObjectMeta{Name: "system:basic-user"},
			Rules: []rbacv1.PolicyRule{
				rule(v("create"), in(authorizationGroup), "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
				rule(v("create"), in(authenticationGroup), "selfsubjectreviews"),
			},
		},
		{
			// Insensitive cluster information, for anyone.
			ObjectMeta: metav1.ObjectMeta{Name: "system:public-info-viewer"},
			Rules: []rbacv1.PolicyRule{
				urls(v("get"), "/livez", "/readyz", "/healthz", "/version", "/version/"),
			},
		},
		{
			// A namespace's administrator: edit and the power to grant it.
			ObjectMeta:      metav1.ObjectMeta{Name: "admin"},
			AggregationRule: aggregation(AggregateToAdmin),
		},
		{
			// Every user-level action in a namespace, but not the
			// namespace's quota, limits, status or roles.
			ObjectMeta:      metav1.ObjectMeta{Name: "edit", Labels: map[string]string{AggregateToAdmin: "true"}},
			AggregationRule: aggregation(AggregateToEdit),
		},
		{
			// Read-only access to the non-escalating objects of a
			// namespace (not secrets, nor roles).
			ObjectMeta:      metav1.ObjectMeta{Name: "view", Labels: map[string]string{AggregateToEdit: "true"}},
			AggregationRule: aggregation(AggregateToView),
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-admin", Labels: map[string]string{AggregateToAdmin: "true"}},
			Rules: []rbacv1.PolicyRule{
				rule(v("create"), in(authorizationGroup), "localsubjectaccessreviews"),
				rule(readWrite, in(rbacv1.GroupName), "roles", "rolebindings"),
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-edit", Labels: map[string]string{AggregateToEdit: "true"}},
			Rules: []rbacv1.PolicyRule{
				// Read on escalating resources.
				rule(read, in(legacyGroup), "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
				rule(v("impersonate"), in(legacyGroup), "serviceaccounts"),
				rule(write, in(legacyGroup), "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
				rule(v("create"), in(legacyGroup), "pods/eviction"),
				rule(write, in(legacyGroup), "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
					"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
				rule(v("create"), in(legacyGroup), "serviceaccounts/token"),
				rule(write, in(appsGroup), "statefulsets", "statefulsets/scale", "daemonsets",
					"deployments", "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"),
				rule(write, in(autoscalingGroup), "horizontalpodautoscalers"),
				rule(write, in(batchGroup), "jobs", "cronjobs"),
				rule(write, in(extensionsGroup), "daemonsets", "deployments", "deployments/scale", "deployments/rollback",
					"ingresses", "replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"),
				rule(write, in(policyGroup), "poddisruptionbudgets"),
				rule(write, in(networkingGroup), "networkpolicies", "ingresses"),
				rule(readWrite, in(coordinationGroup), "leases"),
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-view", Labels: map[string]string{AggregateToView: "true"}},
			Rules: []rbacv1.PolicyRule{
				rule(read, in(legacyGroup), "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
					"services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
				rule(read, in(legacyGroup), "limitranges", "resourcequotas", "bindings", "events",
					"pods/status", "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"),
				// Reading namespaces in a namespace's binding reads that one
				// namespace: a hint of which ones a user has access to.
				rule(read, in(legacyGroup), "namespaces"),
				rule(read, in(discoveryGroup), "endpointslices"),
				rule(read, in(appsGroup), "controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
					"daemonsets", "daemonsets/status", "deployments", "deployments/status", "deployments/scale",
					"replicasets", "replicasets/status", "replicasets/scale"),
				rule(read, in(autoscalingGroup), "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
				rule(read, in(batchGroup), "jobs", "cronjobs", "cronjobs/status", "jobs/status"),
				rule(read, in(extensionsGroup), "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
					"deployments/status", "ingresses", "ingresses/status", "replicasets", "replicasets/scale",
					"replicasets/status", "replicationcontrollers/scale", "networkpolicies"),
				rule(read, in(policyGroup), "poddisruptionbudgets", "poddisruptionbudgets/status"),
				rule(read, in(networkingGroup), "ingresses", "ingresses/status", "networkpolicies"),
			},
		},
		{
			// metrics-server's own role: whoever may view a namespace may
			// read its pods' usage (kubectl top).
			ObjectMeta: metav1.ObjectMeta{Name: "system:aggregated-metrics-reader", Labels: map[string]string{
				AggregateToView: "true", AggregateToEdit: "true", AggregateToAdmin: "true",
			}},
			Rules: []rbacv1.PolicyRule{rule(v("get", "list", "watch"), in("metrics.k8s.io"), "pods", "nodes")},
		},
		{
			// For servers delegating authentication and authorization.
			ObjectMeta: metav1.ObjectMeta{Name: "system:auth-delegator"},
			Rules: []rbacv1.PolicyRule{
				rule(v("create"), in(authenticationGroup), "tokenreviews"),
				rule(v("create"), in(authorizationGroup), "subjectaccessreviews"),
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:node"},
			Rules:      NodeRules(),
		},
		{
			// The wharf.dev/local provisioner every agent runs (package
			// localpv), bound to system:nodes. RBAC cannot say "only the
			// PVs this node provisioned": any node may create, update and
			// delete any PV and read every claim and class, as an external
			// provisioner's service account may upstream. A node
			// restricts itself to PVs labelled with its hostname.
			ObjectMeta: metav1.ObjectMeta{Name: LocalProvisionerRole},
			Rules: []rbacv1.PolicyRule{
				rule(v("get", "list", "watch", "create", "update", "patch", "delete"), in(legacyGroup), "persistentvolumes"),
				rule(read, in(legacyGroup), "persistentvolumeclaims"),
				rule(v("update", "patch"), in(legacyGroup), "persistentvolumeclaims/status"),
				rule(read, in(storageGroup), "storageclasses"),
			},
		},
		{
			// To request a node's client certificate and wait for it.
			ObjectMeta: metav1.ObjectMeta{Name: "system:node-bootstrapper"},
			Rules: []rbacv1.PolicyRule{
				rule(v("create", "get", "list", "watch"), in(certificatesGroup), "certificatesigningrequests"),
			},
		},
		{
			// Kubernetes' csrapprover approves the node client requests of
			// those who hold this one, or for their own renewal the next.
			ObjectMeta: metav1.ObjectMeta{Name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"},
			Rules:      []rbacv1.PolicyRule{rule(v("create"), in(certificatesGroup), "certificatesigningrequests/nodeclient")},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"},
			Rules:      []rbacv1.PolicyRule{rule(v("create"), in(certificatesGroup), "certificatesigningrequests/selfnodeclient")},
		},
		// Approving a request (its /approval) needs approve on its signer.
		signerApprover("system:certificates.k8s.io:kube-apiserver-client-approver", certificatesv1.KubeAPIServerClientSignerName),
		signerApprover("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver", certificatesv1.KubeAPIServerClientKubeletSignerName),
		signerApprover("system:certificates.k8s.io:kubelet-serving-approver", certificatesv1.KubeletServingSignerName),
		signerApprover("system:certificates.k8s.io:legacy-unknown-approver", certificatesv1beta1.LegacyUnknownSignerName),
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:kube-scheduler"},
			Rules: []rbacv1.PolicyRule{
				eventsRule(),
				// Leader election.
				rule(v("create"), in(coordinationGroup), "leases"),
				named(rule(v("get", "update"), in(coordinationGroup), "leases"), "kube-scheduler"),
				rule(read, in(legacyGroup), "nodes"),
				rule(v("get", "list", "watch", "delete"), in(legacyGroup), "pods"),
				rule(v("create"), in(legacyGroup), "pods/binding", "bindings"),
				rule(v("patch", "update"), in(legacyGroup), "pods/status"),
				rule(read, in(legacyGroup), "replicationcontrollers", "services"),
				rule(read, in(appsGroup, extensionsGroup), "replicasets"),
				rule(read, in(appsGroup), "statefulsets"),
				rule(read, in(policyGroup), "poddisruptionbudgets"),
				rule(read, in(legacyGroup), "persistentvolumeclaims", "persistentvolumes"),
				rule(v("create"), in(authenticationGroup), "tokenreviews"),
				rule(v("create"), in(authorizationGroup), "subjectaccessreviews"),
				rule(read, in(storageGroup), "csinodes"),
				rule(read, in(legacyGroup), "namespaces"),
				rule(read, in(storageGroup), "csidrivers"),
				rule(read, in(storageGroup), "csistoragecapacities"),
			},
		},
		{
			// What the controller manager needs before it has a service
			// account per controller.
			ObjectMeta: metav1.ObjectMeta{Name: "system:kube-controller-manager"},
			Rules: []rbacv1.PolicyRule{
				eventsRule(),
				rule(v("create"), in(coordinationGroup), "leases"),
				named(rule(v("get", "update"), in(coordinationGroup), "leases"), "kube-controller-manager"),
				rule(v("create"), in(legacyGroup), "secrets", "serviceaccounts"),
				rule(v("delete"), in(legacyGroup), "secrets"),
				rule(v("get"), in(legacyGroup), "namespaces", "secrets", "serviceaccounts", "configmaps"),
				rule(v("update"), in(legacyGroup), "secrets", "serviceaccounts"),
				rule(v("create"), in(authenticationGroup), "tokenreviews"),
				rule(v("create"), in(authorizationGroup), "subjectaccessreviews"),
				rule(v("list", "watch"), in("*"), "*"),
				rule(v("create"), in(legacyGroup), "serviceaccounts/token"),
			},
		},
	}
	for _, r := range roles {
		r.ObjectMeta = defaultMeta(r.ObjectMeta)
	}
	AggregateAll(roles)
	return roles
}

func signerApprover(role, signer string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{named(rule(v("approve"), in(certificatesGroup), "signers"), signer)},
	}
}

func aggregation(label string) *rbacv1.AggregationRule {
	return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
		{MatchLabels: map[string]string{label: "true"}},
	}}
}

// DefaultClusterRoleBindings returns the ClusterRoleBindings a new cluster
// gets, as upstream's. system:node has no subjects (since Kubernetes 1.8):
// nodes get their rights from the Node authorizer, which uses NodeRules.
func DefaultClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		clusterBinding("cluster-admin", groups(user.SystemPrivilegedGroup)),
		clusterBinding("system:monitoring", groups(user.MonitoringGroup)),
		clusterBinding("system:discovery", groups(user.AllAuthenticated)),
		clusterBinding("system:basic-user", groups(user.AllAuthenticated)),
		clusterBinding("system:public-info-viewer", groups(user.AllAuthenticated, user.AllUnauthenticated)),
		clusterBinding("system:node", nil),
		clusterBinding(LocalProvisionerRole, groups(user.NodesGroup)),
		clusterBinding("system:kube-scheduler", users(user.KubeScheduler)),
		clusterBinding("system:kube-controller-manager", users(user.KubeControllerManager)),
	}
}

func clusterBinding(role string, subjects []rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: defaultMeta(metav1.ObjectMeta{Name: role}),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func groups(names ...string) []rbacv1.Subject {
	var s []rbacv1.Subject
	for _, n := range names {
		s = append(s, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n})
	}
	return s
}

func users(names ...string) []rbacv1.Subject {
	var s []rbacv1.Subject
	for _, n := range names {
		s = append(s, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: n})
	}
	return s
}

func defaultMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[BootstrapLabel] = BootstrapLabelValue
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[rbacv1.AutoUpdateAnnotationKey] = "true"
	return m
}
