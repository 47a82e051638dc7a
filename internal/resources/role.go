package resources

import (
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	pathvalidation "k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Roles is rbac.authorization.k8s.io/v1 roles. RBAC objects are stored and
// validated here; authorizing requests with them is not this package's job.
func Roles() *Resource {
	return &Resource{
		GVR:          rbacv1.SchemeGroupVersion.WithResource("roles"),
		Kind:         "Role",
		SingularName: "role",
		Namespaced:   true,
		New:          func() runtime.Object { return &rbacv1.Role{} },
		NewList:      func() runtime.Object { return &rbacv1.RoleList{} },
		Validate: typedValidate(func(r *rbacv1.Role) field.ErrorList {
			errs := validateMeta(&r.ObjectMeta, true, rbacName)
			return append(errs, validatePolicyRules(r.Rules, true)...)
		}),
		Columns: createdAtColumns,
		Row:     createdAtRow,
	}
}

// Kubernetes prints kinds without a printer of their own (roles, cluster
// roles) with a name and the creation time as an RFC 3339 date.
var createdAtColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
}

func createdAtRow(o runtime.Object) []any {
	m := o.(metav1.Object)
	return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}
}

// rbacName is the name rule of RBAC objects: any path segment, so that
// names like "system:node" are valid.
func rbacName(name string, _ bool) []string {
	return pathvalidation.IsValidPathSegmentName(name)
}

func validatePolicyRules(rules []rbacv1.PolicyRule, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rules {
		p := field.NewPath("rules").Index(i)
		if len(r.Verbs) == 0 {
			errs = append(errs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(r.NonResourceURLs) > 0 {
			if namespaced {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), r.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			if len(r.APIGroups) > 0 || len(r.Resources) > 0 || len(r.ResourceNames) > 0 {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), r.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
			}
			continue
		}
		if len(r.APIGroups) == 0 {
			errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(r.Resources) == 0 {
			errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return errs
}
