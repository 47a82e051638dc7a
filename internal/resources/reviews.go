package resources

import (
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Reviews are the questions of authorization.k8s.io/v1 and
// authentication.k8s.io/v1: create-only kinds the server answers in the
// returned object's status (kubectl auth can-i, can-i --list, whoami).
func Reviews() []*Resource {
	review := func(gv schema.GroupVersion, resource, kind string, namespaced bool, newObj func() runtime.Object) *Resource {
		return &Resource{
			GVR: gv.WithResource(resource), Kind: kind, Namespaced: namespaced, CreateOnly: true,
			New: newObj, NewList: newObj,
		}
	}
	authn, authzGV := authenticationv1.SchemeGroupVersion, authorizationv1.SchemeGroupVersion
	return []*Resource{
		review(authn, "tokenreviews", "TokenReview", false, func() runtime.Object { return &authenticationv1.TokenReview{} }),
		review(authn, "selfsubjectreviews", "SelfSubjectReview", false, func() runtime.Object { return &authenticationv1.SelfSubjectReview{} }),
		review(authzGV, "selfsubjectaccessreviews", "SelfSubjectAccessReview", false, func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} }),
		review(authzGV, "selfsubjectrulesreviews", "SelfSubjectRulesReview", false, func() runtime.Object { return &authorizationv1.SelfSubjectRulesReview{} }),
		review(authzGV, "subjectaccessreviews", "SubjectAccessReview", false, func() runtime.Object { return &authorizationv1.SubjectAccessReview{} }),
		review(authzGV, "localsubjectaccessreviews", "LocalSubjectAccessReview", true, func() runtime.Object { return &authorizationv1.LocalSubjectAccessReview{} }),
	}
}
