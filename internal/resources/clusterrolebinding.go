package resources

import (
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ClusterRoleBindings is rbac.authorization.k8s.io/v1 clusterrolebindings:
// they may bind cluster roles only, and name the namespace of every
// service account.
func ClusterRoleBindings() *Resource {
	return &Resource{
		GVR:          rbacv1.SchemeGroupVersion.WithResource("clusterrolebindings"),
		Kind:         "ClusterRoleBinding",
		SingularName: "clusterrolebinding",
		New:          func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		NewList:      func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },
		Default: typed(func(b *rbacv1.ClusterRoleBinding) {
			defaultRoleRef(&b.RoleRef)
			defaultSubjects(b.Subjects)
		}),
		Validate: typedValidate(func(b *rbacv1.ClusterRoleBinding) field.ErrorList {
			errs := validateMeta(&b.ObjectMeta, false, rbacName)
			errs = append(errs, validateRoleRef(b.RoleRef, []string{"ClusterRole"})...)
			return append(errs, validateSubjects(b.Subjects, false)...)
		}),
		ValidateUpdate: typedValidateUpdate(func(b, old *rbacv1.ClusterRoleBinding) field.ErrorList {
			return validateRoleRefUpdate(b.RoleRef, old.RoleRef)
		}),
		Columns: bindingColumns("clusterRoleBinding"),
		Row: typedRowNow(func(b *rbacv1.ClusterRoleBinding, now time.Time) []any {
			return bindingRow(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
		}),
	}
}
