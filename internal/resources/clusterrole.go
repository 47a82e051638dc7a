package resources

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ClusterRoles is rbac.authorization.k8s.io/v1 clusterroles. An aggregated
// role (aggregationRule) is stored as given; filling its rules from the
// selected roles is the aggregation controller's job, which comes later.
func ClusterRoles() *Resource {
	return &Resource{
		GVR:          rbacv1.SchemeGroupVersion.WithResource("clusterroles"),
		Kind:         "ClusterRole",
		SingularName: "clusterrole",
		New:          func() runtime.Object { return &rbacv1.ClusterRole{} },
		NewList:      func() runtime.Object { return &rbacv1.ClusterRoleList{} },
		Validate:     typedValidate(validateClusterRole),
		Columns:      createdAtColumns,
		Row:          createdAtRow,
	}
}

func validateClusterRole(r *rbacv1.ClusterRole) field.ErrorList {
	errs := validateMeta(&r.ObjectMeta, false, rbacName)
	errs = append(errs, validatePolicyRules(r.Rules, false)...)
	if ar := r.AggregationRule; ar != nil {
		p := field.NewPath("aggregationRule", "clusterRoleSelectors")
		if len(ar.ClusterRoleSelectors) == 0 {
			errs = append(errs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
		}
		for i := range ar.ClusterRoleSelectors {
			errs = append(errs, validateLabelSelector(&ar.ClusterRoleSelectors[i], p.Index(i))...)
		}
	}
	return errs
}
