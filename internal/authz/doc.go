// Package authz authorizes Kubernetes API requests: Kubernetes' RBAC
// authorizer, its escalation checks for writes to roles and bindings, the
// default ("bootstrap") cluster roles with their aggregation, and a Node
// authorizer that limits a node's agent to the objects of its own pods.
//
// Decisions use k8s.io/apiserver's authorizer.Attributes, Authorizer and
// Decision and user.Info, so the API server wires it as kube-apiserver
// does (see Example):
//
//   - at start, create DefaultClusterRoles and DefaultClusterRoleBindings
//     that do not exist yet;
//   - rbac := NewRBAC(policy), over the watch cache of the four RBAC
//     resources, calling rbac.Invalidate() from that watch on every change;
//     node := NewNode(pods), over the pod cache indexed by spec.nodeName;
//     chain := Chain(PrivilegedGroups(user.SystemPrivilegedGroup), node, rbac);
//   - after authentication, attrs := RequestAttributes(u, r) and
//     chain.Authorize(ctx, attrs): anything but DecisionAllow is a 403;
//   - in the create and update handlers of roles, clusterroles,
//     rolebindings and clusterrolebindings, NewGuard(rbac, chain).Check*;
//     in every create handler, AdmitNodeCreate (a node's own Node and
//     Lease only);
//   - a controller storing Aggregate's result in each ClusterRole with an
//     aggregationRule whenever a ClusterRole changes;
//   - SelfSubjectRulesReview: SubjectRulesReview(ctx, u, ns, node, rbac);
//     SubjectAccessReview: chain.Authorize(ctx, ReviewAttributes(spec)).
//
// Upstream-equivalent (kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac,
// pkg/registry/rbac and its validation package): rule matching (verbs,
// groups, resources with "resource/subresource" and "*/subresource",
// resourceNames, nonResourceURLs with a trailing "*"), subject matching,
// RoleBindings of ClusterRoles, the allow and no-opinion reasons, RulesFor,
// ConfirmNoEscalation and its message, the escalate and bind verbs, the
// aggregationRule guard (cluster-admin rights needed), skipping the checks
// for updates of garbage-collector fields only, and the
// clusterrole-aggregation controller's merge.
//
// Simplified or different:
//   - Bindings are indexed by subject in a snapshot the caller invalidates
//     (RBAC.Invalidate) when a role or binding changes, instead of scanning
//     every binding per request; a binding's role is resolved when the
//     snapshot is built, so role changes need Invalidate too.
//   - The Node authorizer asks the caller for the pods bound to a node
//     (NodeGraph) instead of keeping upstream's object graph, so it relates
//     pods, secrets, configmaps, persistentvolumeclaims and service accounts
//     to nodes, but not persistentvolumes, volumeattachments or resource
//     claims (those are denied to nodes). It denies, rather than leaves to
//     RBAC, what it does not allow a node on the resources it restricts.
//     Nodes may read every Pod and Node (upstream's
//     AuthorizeNodeWithSelectors narrows both) because Wharf's agent
//     watches all nodes, and may not create pods (Wharf has no mirror
//     pods). AdmitNodeCreate is the part of the NodeRestriction admission
//     plugin the authorizer cannot do, the name being in the body; the rest
//     of NodeRestriction (labels a node may set, pods' owner checks) is
//     left out.
//   - The default policy holds the roles Wharf needs, not every upstream
//     one (no controller roles, kube-proxy, kube-dns...; the
//     certificate request roles are there: node-bootstrapper, the
//     nodeclient ones and the signers' approvers);
//     admin, edit and view come with their rules already aggregated;
//     system:node adds what Wharf's agent reads as service proxy and
//     ingress (endpointslices, ingresses, ingressclasses).
package authz
