package authz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// NodeLeaseNamespace holds the nodes' heartbeat Leases, one per node, named
// after it.
const NodeLeaseNamespace = corev1.NamespaceNodeLease

const nodeUserPrefix = "system:node:"

// NodeIdentity returns the node a user is the agent of: a member of
// system:nodes named system:node:<node>. The name is "" for a member with
// no node name.
func NodeIdentity(u user.Info) (string, bool) {
	if u == nil {
		return "", false
	}
	name, ok := strings.CutPrefix(u.GetName(), nodeUserPrefix)
	if !ok {
		return "", false
	}
	for _, g := range u.GetGroups() {
		if g == user.NodesGroup {
			return name, true
		}
	}
	return "", false
}

// NodeGraph is what the Node authorizer needs from the caller's watch
// cache.
type NodeGraph interface {
	// PodsOnNode returns the pods whose spec.nodeName is node.
	PodsOnNode(node string) ([]*corev1.Pod, error)
}

// VolumeGraph, when a NodeGraph implements it, lets nodes get the
// PersistentVolumes bound to their pods' claims.
type VolumeGraph interface {
	// VolumeOfClaim returns the spec.volumeName of a claim ("" when it
	// is unbound or missing).
	VolumeOfClaim(namespace, name string) (string, error)
}

// Node is Kubernetes' Node authorizer, simplified: a node's agent may read
// the secrets, configmaps, persistentvolumeclaims, persistentvolumes and
// service account tokens of the pods bound to it, write its own Node and
// Lease and its pods' status, and otherwise do what NodeRules allow. It
// has no opinion on users that are not nodes, and denies (so that no later
// authorizer allows) what a node may not do with the resources it
// restricts: "no relationship found between node 'x' and this object".
// Claims and volumes are the exception, as upstream: what it does not
// allow is left to RBAC, where the wharf.dev/local provisioner's
// ClusterRole grants nodes what the provisioner needs.
type Node struct {
	graph    NodeGraph
	rules    []rbacv1.PolicyRule
	readable map[objectRef]bool
	tlsList  bool
}

var (
	_ authorizer.Authorizer   = (*Node)(nil)
	_ authorizer.RuleResolver = (*Node)(nil)
)

type objectRef struct{ resource, namespace, name string }

// NodeOption changes what NewNode allows.
type NodeOption func(*Node)

// WithNodeReadable lets every node read one more object of resource
// ("secrets" or "configmaps"), as Wharf's heartbeat key
// kube-system/wharf-heartbeat-key, which no pod uses.
func WithNodeReadable(resource, namespace, name string) NodeOption {
	return func(n *Node) { n.readable[objectRef{resource, namespace, name}] = true }
}

// WithNodeTLSSecretList lets nodes list and watch the secrets of type
// kubernetes.io/tls of any namespace (with that field selector), as
// Wharf's ingress on every node does. Upstream has no such grant.
func WithNodeTLSSecretList() NodeOption { return func(n *Node) { n.tlsList = true } }

// NewNode returns the Node authorizer reading pods from g.
func NewNode(g NodeGraph, opts ...NodeOption) *Node {
	n := &Node{graph: g, rules: NodeRules(), readable: map[objectRef]bool{}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func allow() (authorizer.Decision, string, error) { return authorizer.DecisionAllow, "", nil }

func deny(format string, args ...any) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, fmt.Sprintf(format, args...), nil
}

// Authorize decides a node's request; see Node.
func (n *Node) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	node, ok := NodeIdentity(attrs.GetUser())
	if !ok {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if node == "" {
		return authorizer.DecisionNoOpinion, fmt.Sprintf("unknown node for user %q", attrs.GetUser().GetName()), nil
	}
	if attrs.IsResourceRequest() {
		switch attrs.GetAPIGroup() + "/" + attrs.GetResource() {
		case "/secrets", "/configmaps":
			return n.readPodObject(node, attrs)
		case "/persistentvolumeclaims":
			return n.claim(node, attrs)
		case "/serviceaccounts":
			return n.token(node, attrs)
		case "/persistentvolumes":
			return n.volume(node, attrs)
		case "storage.k8s.io/volumeattachments", "resource.k8s.io/resourceclaims", "resource.k8s.io/resourceslices":
			return deny("node '%s' cannot access %s: Wharf's node authorizer does not relate them to nodes", node, attrs.GetResource())
		case "coordination.k8s.io/leases":
			return lease(node, attrs)
		case "storage.k8s.io/csinodes":
			return csiNode(node, attrs)
		case "/nodes":
			return nodeObject(node, attrs)
		case "/pods":
			return n.pod(node, attrs)
		}
	}
	if RulesAllow(attrs, n.rules...) {
		return allow()
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// ConditionsAwareAuthorize is Authorize; Node has no conditional decisions.
func (n *Node) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(n.Authorize(ctx, attrs))
}

// EvaluateConditions is not supported: Node never returns conditions.
func (n *Node) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// RulesFor, as upstream, cannot list a node's rules (they depend on its
// pods): incomplete, with an error; nothing for other users.
func (n *Node) RulesFor(_ context.Context, u user.Info, _ string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	if _, ok := NodeIdentity(u); ok {
		return nil, nil, true, errors.New("node authorizer does not support user rule resolution")
	}
	return nil, nil, false, nil
}

// readPodObject: get, list or watch (of one object, named by a
// metadata.name field selector) a secret or configmap a pod on the node
// uses.
func (n *Node) readPodObject(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	switch attrs.GetVerb() {
	case "get", "list", "watch":
	default:
		return deny("node '%s' can only read %s", node, attrs.GetResource())
	}
	if attrs.GetSubresource() != "" {
		return deny("node '%s' cannot read subresource %s", node, attrs.GetSubresource())
	}
	if n.tlsList && attrs.GetResource() == "secrets" && attrs.GetName() == "" && attrs.GetVerb() != "get" && tlsOnly(attrs) {
		return allow()
	}
	if attrs.GetNamespace() == "" || attrs.GetName() == "" {
		return deny("node '%s' can only read individual %s of its pods", node, attrs.GetResource())
	}
	if n.readable[objectRef{attrs.GetResource(), attrs.GetNamespace(), attrs.GetName()}] {
		return allow()
	}
	return n.related(node, attrs, func(p *corev1.Pod) bool {
		if attrs.GetResource() == "secrets" {
			return usesSecret(p, attrs.GetName())
		}
		return usesConfigMap(p, attrs.GetName())
	})
}

func tlsOnly(attrs authorizer.Attributes) bool {
	reqs, err := attrs.GetFieldSelector()
	if err != nil {
		return false
	}
	for _, r := range reqs {
		if r.Field == "type" && (r.Operator == selection.Equals || r.Operator == selection.DoubleEquals) && r.Value == string(corev1.SecretTypeTLS) {
			return true
		}
	}
	return false
}

// claim: get a claim a pod on the node uses, or update its status; the
// rest is RBAC's to decide (no opinion), as upstream.
func (n *Node) claim(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	switch {
	case attrs.GetSubresource() == "" && attrs.GetVerb() == "get":
	case attrs.GetSubresource() == "status" && (attrs.GetVerb() == "update" || attrs.GetVerb() == "patch"):
	default:
		return noOpinion("node '%s' can only get persistentvolumeclaims of its pods and update their status", node)
	}
	return orNoOpinion(n.related(node, attrs, func(p *corev1.Pod) bool { return usesClaim(p, attrs.GetName()) }))
}

// volume: get a PV bound to a claim a pod on the node uses; the rest is
// RBAC's to decide.
func (n *Node) volume(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	vg, ok := n.graph.(VolumeGraph)
	if !ok || attrs.GetVerb() != "get" || attrs.GetSubresource() != "" || attrs.GetName() == "" {
		return noOpinion("node '%s' can only get persistentvolumes bound to the claims of its pods", node)
	}
	pods, err := n.graph.PodsOnNode(node)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("pods on node %q: %w", node, err)
	}
	for _, p := range pods {
		if p.Spec.NodeName != node {
			continue
		}
		for _, claim := range claimNames(p) {
			pv, err := vg.VolumeOfClaim(p.Namespace, claim)
			if err == nil && pv == attrs.GetName() {
				return allow()
			}
		}
	}
	return noOpinion("no relationship found between node '%s' and this object", node)
}

func noOpinion(format string, args ...any) (authorizer.Decision, string, error) {
	return authorizer.DecisionNoOpinion, fmt.Sprintf(format, args...), nil
}

// orNoOpinion turns a denial into no opinion.
func orNoOpinion(d authorizer.Decision, reason string, err error) (authorizer.Decision, string, error) {
	if d == authorizer.DecisionDeny {
		d = authorizer.DecisionNoOpinion
	}
	return d, reason, err
}

// token: create a token for the service account of a pod on the node.
func (n *Node) token(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	if attrs.GetVerb() != "create" || attrs.GetSubresource() != "token" {
		return deny("node '%s' can only create tokens of the service accounts of its pods", node)
	}
	return n.related(node, attrs, func(p *corev1.Pod) bool {
		return cmp.Or(p.Spec.ServiceAccountName, "default") == attrs.GetName()
	})
}

// related allows the request if a pod on the node in the request's
// namespace satisfies uses.
func (n *Node) related(node string, attrs authorizer.Attributes, uses func(*corev1.Pod) bool) (authorizer.Decision, string, error) {
	if attrs.GetName() == "" {
		return deny("node '%s' can only access individual objects of its pods", node)
	}
	pods, err := n.graph.PodsOnNode(node)
	if err != nil {
		return authorizer.DecisionDeny, fmt.Sprintf("no relationship found between node '%s' and this object", node),
			fmt.Errorf("pods on node %q: %w", node, err)
	}
	for _, p := range pods {
		if p.Namespace == attrs.GetNamespace() && p.Spec.NodeName == node && uses(p) {
			return allow()
		}
	}
	return deny("no relationship found between node '%s' and this object", node)
}

// lease: the node's own Lease in kube-node-lease. A create names no
// object; AdmitNodeCreate checks the name in its body.
func lease(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	switch attrs.GetVerb() {
	case "get", "create", "update", "patch", "delete":
	default:
		return deny("node '%s' can only get, create, update, patch, or delete a node lease", node)
	}
	if attrs.GetNamespace() != NodeLeaseNamespace {
		return deny("node '%s' can only access leases in the %q system namespace", node, NodeLeaseNamespace)
	}
	if attrs.GetVerb() != "create" && attrs.GetName() != node {
		return deny("node '%s' can only access node lease with the same name as the requesting node", node)
	}
	return allow()
}

func csiNode(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	switch attrs.GetVerb() {
	case "get", "create", "update", "patch", "delete":
	default:
		return deny("node '%s' can only get, create, update, patch, or delete a CSINode", node)
	}
	if attrs.GetSubresource() != "" || (attrs.GetVerb() != "create" && attrs.GetName() != node) {
		return deny("node '%s' can only access CSINode with the same name as the requesting node", node)
	}
	return allow()
}

// nodeObject: read any Node (Wharf's agent watches them all); write only
// its own.
func nodeObject(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	verb, sub := attrs.GetVerb(), attrs.GetSubresource()
	switch {
	case sub == "" && (verb == "get" || verb == "list" || verb == "watch"):
		return allow()
	case sub == "" && verb == "create":
		return allow() // AdmitNodeCreate checks the name in the body
	case (sub == "" || sub == "status") && (verb == "update" || verb == "patch"):
		if attrs.GetName() == node {
			return allow()
		}
		return deny("node '%s' is not allowed to modify node '%s'", node, attrs.GetName())
	}
	return deny("node '%s' cannot %s nodes%s", node, verb, subSuffix(sub))
}

// pod: read any pod (as upstream without AuthorizeNodeWithSelectors);
// update the status of, evict or delete (once terminated) pods bound to
// the node. Wharf has no mirror pods: nodes create none.
func (n *Node) pod(node string, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	verb, sub := attrs.GetVerb(), attrs.GetSubresource()
	switch {
	case sub == "" && (verb == "get" || verb == "list" || verb == "watch"):
		return allow()
	case sub == "" && verb == "delete",
		sub == "status" && (verb == "update" || verb == "patch"),
		sub == "eviction" && verb == "create":
		return n.related(node, attrs, func(p *corev1.Pod) bool { return p.Name == attrs.GetName() })
	}
	return deny("node '%s' cannot %s pods%s", node, verb, subSuffix(sub))
}

func subSuffix(sub string) string {
	if sub == "" {
		return ""
	}
	return "/" + sub
}

// AdmitNodeCreate refuses a node's creation of a Node or Lease not named
// after itself (or a Lease outside kube-node-lease): the part of
// Kubernetes' NodeRestriction admission the authorizer cannot do, the
// name being in the body. Call it on create with the decoded object; it
// returns nil for users that are not nodes.
func AdmitNodeCreate(u user.Info, obj runtime.Object) error {
	node, ok := NodeIdentity(u)
	if !ok {
		return nil
	}
	switch o := obj.(type) {
	case *corev1.Node:
		if o.Name != node {
			return apierrors.NewForbidden(corev1.Resource("nodes"), o.Name,
				fmt.Errorf("node %q is not allowed to modify node %q", node, o.Name))
		}
	case *coordinationv1.Lease:
		if o.Name != node || o.Namespace != NodeLeaseNamespace {
			return apierrors.NewForbidden(coordinationv1.Resource("leases"), o.Name,
				errors.New("can only access node lease with the same name as the requesting node"))
		}
	}
	return nil
}

// The references a pod makes, as upstream's podutil visitors, less the
// in-tree volume plugins' secret references (Wharf runs none).

func usesSecret(p *corev1.Pod, name string) bool {
	for _, s := range p.Spec.ImagePullSecrets {
		if s.Name == name {
			return true
		}
	}
	for _, v := range p.Spec.Volumes {
		switch {
		case v.Secret != nil && v.Secret.SecretName == name:
			return true
		case v.CSI != nil && v.CSI.NodePublishSecretRef != nil && v.CSI.NodePublishSecretRef.Name == name:
			return true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil && s.Secret.Name == name {
					return true
				}
			}
		}
	}
	return anyContainer(p, func(c *corev1.Container) bool {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == name {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
		return false
	})
}

func usesConfigMap(p *corev1.Pod, name string) bool {
	for _, v := range p.Spec.Volumes {
		switch {
		case v.ConfigMap != nil && v.ConfigMap.Name == name:
			return true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil && s.ConfigMap.Name == name {
					return true
				}
			}
		}
	}
	return anyContainer(p, func(c *corev1.Container) bool {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil && e.ConfigMapRef.Name == name {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == name {
				return true
			}
		}
		return false
	})
}

// usesClaim: a persistentVolumeClaim volume, or the claim of a generic
// ephemeral volume, named <pod>-<volume>.
func usesClaim(p *corev1.Pod, name string) bool {
	for _, c := range claimNames(p) {
		if c == name {
			return true
		}
	}
	return false
}

// claimNames lists the claims p's volumes use.
func claimNames(p *corev1.Pod) []string {
	var names []string
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Ephemeral != nil {
			names = append(names, p.Name+"-"+v.Name)
		}
	}
	return names
}

func anyContainer(p *corev1.Pod, f func(*corev1.Container) bool) bool {
	for i := range p.Spec.InitContainers {
		if f(&p.Spec.InitContainers[i]) {
			return true
		}
	}
	for i := range p.Spec.Containers {
		if f(&p.Spec.Containers[i]) {
			return true
		}
	}
	for i := range p.Spec.EphemeralContainers {
		if f((*corev1.Container)(&p.Spec.EphemeralContainers[i].EphemeralContainerCommon)) {
			return true
		}
	}
	return false
}
