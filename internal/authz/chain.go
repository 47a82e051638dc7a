package authz

import (
	"context"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Chain asks each authorizer in turn and returns the first Allow or Deny,
// as kube-apiserver's union of authorization modes; if all have no
// opinion, their reasons joined. Kubernetes' order is
// Chain(PrivilegedGroups(user.SystemPrivilegedGroup), node, rbac).
func Chain(as ...authorizer.Authorizer) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		var reasons []string
		var errs []error
		for _, a := range as {
			d, reason, err := a.Authorize(ctx, attrs)
			if d == authorizer.DecisionAllow || d == authorizer.DecisionDeny {
				return d, reason, err
			}
			if err != nil {
				errs = append(errs, err)
			}
			if reason != "" {
				reasons = append(reasons, reason)
			}
		}
		return authorizer.DecisionNoOpinion, strings.Join(reasons, "\n"), utilerrors.NewAggregate(errs)
	})
}

// PrivilegedGroups allows every request of a member of groups and has no
// opinion on others: kube-apiserver puts system:masters first, so the
// server's own clients work whatever the RBAC objects say.
func PrivilegedGroups(groups ...string) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		if u := attrs.GetUser(); u != nil {
			for _, g := range u.GetGroups() {
				if slices.Contains(groups, g) {
					return authorizer.DecisionAllow, "", nil
				}
			}
		}
		return authorizer.DecisionNoOpinion, "", nil
	})
}

// SubjectRulesReview answers a SelfSubjectRulesReview (kubectl auth can-i
// --list) for u in namespace from resolvers, such as the Node authorizer
// and RBAC: all their rules, incomplete if one says so, and their errors.
func SubjectRulesReview(ctx context.Context, u user.Info, namespace string, resolvers ...authorizer.RuleResolver) authorizationv1.SubjectRulesReviewStatus {
	st := authorizationv1.SubjectRulesReviewStatus{
		ResourceRules:    []authorizationv1.ResourceRule{},
		NonResourceRules: []authorizationv1.NonResourceRule{},
	}
	var errs []error
	for _, r := range resolvers {
		res, nonRes, incomplete, err := r.RulesFor(ctx, u, namespace)
		for _, ri := range res {
			st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{
				Verbs: ri.GetVerbs(), APIGroups: ri.GetAPIGroups(), Resources: ri.GetResources(), ResourceNames: ri.GetResourceNames(),
			})
		}
		for _, ri := range nonRes {
			st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{
				Verbs: ri.GetVerbs(), NonResourceURLs: ri.GetNonResourceURLs(),
			})
		}
		st.Incomplete = st.Incomplete || incomplete
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := utilerrors.NewAggregate(errs); err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}
