package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"wharf.dev/wharf/internal/authz"
)

// The review kinds are questions, not objects: a create answers in the
// returned object's status and stores nothing (kubectl auth can-i, auth
// can-i --list, auth whoami; webhooks' TokenReview and SubjectAccessReview).

// review answers a create of one of the review kinds.
func (s *Server) review(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	obj, _, err := s.decodeObject(w, r, req)
	if err != nil {
		return err
	}
	u, ok := UserFrom(ctx)
	if !ok {
		return apierrors.NewUnauthorized("Unauthorized")
	}
	me := userInfo(u)
	switch o := obj.(type) {
	case *authorizationv1.SelfSubjectAccessReview:
		spec := authorizationv1.SubjectAccessReviewSpec{
			ResourceAttributes: o.Spec.ResourceAttributes, NonResourceAttributes: o.Spec.NonResourceAttributes,
			User: me.GetName(), Groups: me.GetGroups(),
		}
		o.Status = s.decide(ctx, spec)
	case *authorizationv1.SubjectAccessReview:
		if o.Spec.User == "" && len(o.Spec.Groups) == 0 {
			return invalid(req, "", fieldRequired("spec.user", "at least one of user or group must be specified"))
		}
		o.Status = s.decide(ctx, o.Spec)
	case *authorizationv1.LocalSubjectAccessReview:
		if ra := o.Spec.ResourceAttributes; ra == nil || ra.Namespace != req.namespace {
			return invalid(req, "", fieldRequired("spec.resourceAttributes.namespace", "must match the namespace of the request"))
		}
		o.Status = s.decide(ctx, o.Spec)
	case *authorizationv1.SelfSubjectRulesReview:
		if s.authz == nil {
			o.Status = authorizationv1.SubjectRulesReviewStatus{
				ResourceRules:    []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
				NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}
			break
		}
		o.Status = authz.SubjectRulesReview(ctx, me, o.Spec.Namespace, s.authz.node, s.authz.rbac)
	case *authenticationv1.SelfSubjectReview:
		o.Status.UserInfo = reviewedUser(me)
	case *authenticationv1.TokenReview:
		o.Status = s.reviewToken(ctx, o.Spec.Token, o.Spec.Audiences)
	default:
		return fmt.Errorf("%T is not a review kind", obj)
	}
	return s.writeObject(w, r, http.StatusCreated, req, obj)
}

// decide is the authorizers' answer to a SubjectAccessReview's question.
func (s *Server) decide(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) authorizationv1.SubjectAccessReviewStatus {
	if s.authz == nil {
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true}
	}
	d, reason, err := s.authz.chain.Authorize(ctx, authz.ReviewAttributes(spec))
	st := authorizationv1.SubjectAccessReviewStatus{
		Allowed: d == authorizer.DecisionAllow, Denied: d == authorizer.DecisionDeny, Reason: reason,
	}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}

// reviewToken authenticates a bearer token as a request carrying it would be.
// A service account token is checked against the review's audiences (else
// the API's); other tokens are the API's own and have only its audiences.
func (s *Server) reviewToken(ctx context.Context, token string, audiences []string) authenticationv1.TokenReviewStatus {
	invalid := authenticationv1.TokenReviewStatus{Error: "token not valid"}
	if token == "" {
		return invalid
	}
	u, err := s.serviceAccountUser(ctx, token, s.tokenAudiences(audiences))
	if err != nil {
		if s.cfg.Authenticate == nil || len(audiences) > 0 && !slices.ContainsFunc(audiences, func(a string) bool { return slices.Contains(s.apiAudiences(), a) }) {
			return invalid
		}
		probe, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		probe.Header.Set("Authorization", "Bearer "+token)
		var ok bool
		if u, ok = s.cfg.Authenticate(probe); !ok {
			return invalid
		}
	}
	return authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: s.tokenAudiences(audiences), User: reviewedUser(userInfo(u))}
}

// reviewedUser is a user as reviews report it.
func reviewedUser(info user.Info) authenticationv1.UserInfo {
	var extra map[string]authenticationv1.ExtraValue
	for k, v := range info.GetExtra() {
		if extra == nil {
			extra = map[string]authenticationv1.ExtraValue{}
		}
		extra[k] = v
	}
	return authenticationv1.UserInfo{Username: info.GetName(), UID: info.GetUID(), Groups: info.GetGroups(), Extra: extra}
}

func fieldRequired(path, msg string) field.ErrorList {
	parts := strings.Split(path, ".")
	return field.ErrorList{field.Required(field.NewPath(parts[0], parts[1:]...), msg)}
}
