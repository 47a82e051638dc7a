// Package authz authorizes Kubernetes API requests: Kubernetes' RBAC
// authorizer, its escalation checks for writes to roles and bindings, the
// default ("bootstrap") cluster roles with aggregation, and a Node
// authorizer that limits a node's agent to the objects of its own pods.
//
// Every decision uses k8s.io/apiserver's authorizer.Attributes and
// user.Info, so the API server wires it as Kubernetes does:
//
//	attrs, err := authz.RequestAttributes(u, r)
//	decision, reason, err := authz.Chain(node, rbac).Authorize(ctx, attrs)
//
// and answers 403 unless the decision is authorizer.DecisionAllow.
//
// Upstream-equivalent (kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac,
// pkg/registry/rbac and its validation package): rule matching (verbs,
// groups, resources with "resource/subresource" and "*/subresource",
// resourceNames, nonResourceURLs with a trailing "*"), subject matching,
// RoleBindings of ClusterRoles, the allow and no-opinion reasons, RulesFor,
// ConfirmNoEscalation and its message, the escalate and bind verbs, the
// aggregationRule guard (cluster-admin rights needed) and the
// clusterrole-aggregation controller's merge.
//
// Simplified or different:
//   - Bindings are indexed by subject in a snapshot the caller invalidates
//     (RBAC.Invalidate) when a role or binding changes, instead of scanning
//     every binding per request; a binding's role is resolved when the
//     snapshot is built.
//   - The Node authorizer asks the caller for the pods bound to a node
//     (NodeGraph) instead of keeping upstream's object graph, so it knows
//     pods, secrets, configmaps, persistentvolumeclaims and service accounts
//     but not persistentvolumes, volumeattachments or resource claims (those
//     are denied). It denies, rather than leaves to RBAC, what it does not
//     allow a node on the resources it restricts; nodes may read every Pod
//     and Node (upstream's AuthorizeNodeWithSelectors narrows both) because
//     Wharf's agent watches all nodes. Writes whose object name is only in
//     the body (creating a Node or Lease) are checked by AdmitNodeCreate,
//     the part of the NodeRestriction admission plugin the authorizer cannot
//     do.
//   - The default policy holds the roles Wharf needs, not every upstream
//     one; admin, edit and view come with their rules already aggregated.
package authz
