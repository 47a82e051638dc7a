package authz

import (
	"fmt"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
)

var requestInfos = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// RequestAttributes is what u asks for with r, parsed as kube-apiserver's
// request-info and authorization filters do: list or watch for a GET
// without a name (a metadata.name field selector names the object),
// deletecollection for a DELETE without one, and for paths outside
// /api and /apis (such as /healthz) a non-resource request whose verb is
// the lower-case method.
func RequestAttributes(u user.Info, r *http.Request) (authorizer.AttributesRecord, error) {
	info, err := requestInfos.NewRequestInfo(r)
	if err != nil {
		return authorizer.AttributesRecord{}, fmt.Errorf("request %s %s: %w", r.Method, r.URL.Path, err)
	}
	a := authorizer.AttributesRecord{
		User:            u,
		Verb:            info.Verb,
		Namespace:       info.Namespace,
		APIGroup:        info.APIGroup,
		APIVersion:      info.APIVersion,
		Resource:        info.Resource,
		Subresource:     info.Subresource,
		Name:            info.Name,
		ResourceRequest: info.IsResourceRequest,
		Path:            info.Path,
	}
	// A selector that does not parse is kept as the error, as upstream
	// does: authorizers relying on it then refuse.
	if info.FieldSelector != "" {
		sel, err := fields.ParseSelector(info.FieldSelector)
		if err != nil {
			a.FieldSelectorParsingErr = err
		} else if reqs := sel.Requirements(); len(reqs) > 0 {
			a.FieldSelectorRequirements = reqs
		}
	}
	if info.LabelSelector != "" {
		sel, err := labels.Parse(info.LabelSelector)
		if err != nil {
			a.LabelSelectorParsingErr = err
		} else if reqs, _ := sel.Requirements(); len(reqs) > 0 {
			a.LabelSelectorRequirements = reqs
		}
	}
	return a, nil
}

// ReviewAttributes is what a SubjectAccessReview (or the self and local
// kinds, after the caller filled spec.user and groups) asks about, as
// upstream's authorizationutil.AuthorizationAttributesFrom reads it.
// Selectors in the review are ignored.
func ReviewAttributes(spec authorizationv1.SubjectAccessReviewSpec) authorizer.AttributesRecord {
	extra := map[string][]string{}
	for k, v := range spec.Extra {
		extra[k] = v
	}
	a := authorizer.AttributesRecord{
		User: &user.DefaultInfo{Name: spec.User, UID: spec.UID, Groups: spec.Groups, Extra: extra},
	}
	if ra := spec.ResourceAttributes; ra != nil {
		a.ResourceRequest = true
		a.Verb, a.Namespace, a.APIGroup, a.APIVersion = ra.Verb, ra.Namespace, ra.Group, matchAnyVersion(ra.Version)
		a.Resource, a.Subresource, a.Name = ra.Resource, ra.Subresource, ra.Name
	} else if nra := spec.NonResourceAttributes; nra != nil {
		a.Verb, a.Path = nra.Verb, nra.Path
	}
	return a
}

func matchAnyVersion(v string) string {
	if v == "" {
		return "*"
	}
	return v
}
