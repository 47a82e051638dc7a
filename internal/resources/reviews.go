package resources

import (
	authenticationv1 "k8s.io/api/authentication/v1"
	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Reviews are the questions of authorization.k8s.io/v1 and
// authentication.k8s.io/v1 (SelfSubjectReview in v1beta1 too): create-only
// kinds the server answers in the returned object's status (kubectl auth
// can-i, can-i --list, whoami).
func Reviews() []*Resource {
	review := func(gv schema.GroupVersion, resource, kind string, namespaced bool, newObj func() runtime.Object) *Resource {
		return &Resource{
			GVR: gv.WithResource(resource), Kind: kind, Namespaced: namespaced, CreateOnly: true,
			New: newObj, NewList: newObj,
		}
	}
	authn, authzGV := authenticationv1.SchemeGroupVersion, authorizationv1.SchemeGroupVersion
	selfSubject := review(authn, "selfsubjectreviews", "SelfSubjectReview", false, func() runtime.Object { return &authenticationv1.SelfSubjectReview{} })
	newSelfSubjectV1beta1 := func() runtime.Object { return &authenticationv1beta1.SelfSubjectReview{} }
	return []*Resource{
		review(authn, "tokenreviews", "TokenReview", false, func() runtime.Object { return &authenticationv1.TokenReview{} }),
		selfSubject,
		// kubectl 1.27's auth whoami asks in v1beta1.
		servedIn(selfSubject, authenticationv1beta1.SchemeGroupVersion, newSelfSubjectV1beta1, newSelfSubjectV1beta1, Conversion{
			ToServed: func(o runtime.Object) (runtime.Object, error) {
				in := o.(*authenticationv1.SelfSubjectReview).DeepCopy()
				return &authenticationv1beta1.SelfSubjectReview{ObjectMeta: in.ObjectMeta, Status: authenticationv1beta1.SelfSubjectReviewStatus{UserInfo: in.Status.UserInfo}}, nil
			},
			FromServed: func(o runtime.Object) (runtime.Object, error) {
				in := o.(*authenticationv1beta1.SelfSubjectReview).DeepCopy()
				return &authenticationv1.SelfSubjectReview{ObjectMeta: in.ObjectMeta, Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: in.Status.UserInfo}}, nil
			},
		}),
		review(authzGV, "selfsubjectaccessreviews", "SelfSubjectAccessReview", false, func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} }),
		review(authzGV, "selfsubjectrulesreviews", "SelfSubjectRulesReview", false, func() runtime.Object { return &authorizationv1.SelfSubjectRulesReview{} }),
		review(authzGV, "subjectaccessreviews", "SubjectAccessReview", false, func() runtime.Object { return &authorizationv1.SubjectAccessReview{} }),
		review(authzGV, "localsubjectaccessreviews", "LocalSubjectAccessReview", true, func() runtime.Object { return &authorizationv1.LocalSubjectAccessReview{} }),
	}
}
