package resources

import (
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RoleBindings is rbac.authorization.k8s.io/v1 rolebindings (stored and
// validated only, like every RBAC kind here).
func RoleBindings() *Resource {
	return &Resource{
		GVR:          rbacv1.SchemeGroupVersion.WithResource("rolebindings"),
		Kind:         "RoleBinding",
		SingularName: "rolebinding",
		Namespaced:   true,
		New:          func() runtime.Object { return &rbacv1.RoleBinding{} },
		NewList:      func() runtime.Object { return &rbacv1.RoleBindingList{} },
		Default: typed(func(b *rbacv1.RoleBinding) {
			defaultRoleRef(&b.RoleRef)
			defaultSubjects(b.Subjects)
		}),
		Validate: typedValidate(func(b *rbacv1.RoleBinding) field.ErrorList {
			errs := validateMeta(&b.ObjectMeta, true, rbacName)
			errs = append(errs, validateRoleRef(b.RoleRef, []string{"Role", "ClusterRole"})...)
			return append(errs, validateSubjects(b.Subjects, true)...)
		}),
		ValidateUpdate: typedValidateUpdate(func(b, old *rbacv1.RoleBinding) field.ErrorList {
			return validateRoleRefUpdate(b.RoleRef, old.RoleRef)
		}),
		Columns: bindingColumns("roleBinding"),
		Row: typedRowNow(func(b *rbacv1.RoleBinding, now time.Time) []any {
			return bindingRow(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
		}),
	}
}

func defaultRoleRef(r *rbacv1.RoleRef) {
	if r.APIGroup == "" {
		r.APIGroup = rbacv1.GroupName
	}
}

// defaultSubjects gives users and groups the RBAC API group; charts
// usually leave it out.
func defaultSubjects(ss []rbacv1.Subject) {
	for i := range ss {
		if s := &ss[i]; s.APIGroup == "" && (s.Kind == rbacv1.UserKind || s.Kind == rbacv1.GroupKind) {
			s.APIGroup = rbacv1.GroupName
		}
	}
}

func validateRoleRef(r rbacv1.RoleRef, kinds []string) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("roleRef")
	if r.APIGroup != rbacv1.GroupName {
		errs = append(errs, field.NotSupported(p.Child("apiGroup"), r.APIGroup, []string{rbacv1.GroupName}))
	}
	if !oneOf(r.Kind, kinds...) {
		errs = append(errs, field.NotSupported(p.Child("kind"), r.Kind, kinds))
	}
	return append(errs, validateName(rbacName, r.Name, p.Child("name"))...)
}

// validateRoleRefUpdate: a binding's role is fixed; granting another role
// means a new binding.
func validateRoleRefUpdate(r, old rbacv1.RoleRef) field.ErrorList {
	if r != old {
		return field.ErrorList{field.Invalid(field.NewPath("roleRef"), r, "cannot change roleRef")}
	}
	return nil
}

var subjectKinds = []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}

// validateSubjects: service accounts are named like objects and, in a
// cluster-wide binding, need their namespace; users and groups are any
// string in the RBAC API group.
func validateSubjects(ss []rbacv1.Subject, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	for i, s := range ss {
		p := field.NewPath("subjects").Index(i)
		if s.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name != "" {
				errs = append(errs, messages(p.Child("name"), s.Name, nameIsDNSSubdomain(s.Name, false))...)
			}
			if s.APIGroup != "" {
				errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{""}))
			}
			if !namespaced && s.Namespace == "" {
				errs = append(errs, field.Required(p.Child("namespace"), ""))
			}
		case rbacv1.UserKind, rbacv1.GroupKind:
			if s.APIGroup != rbacv1.GroupName {
				errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, subjectKinds))
		}
	}
	return errs
}

func bindingColumns(what string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Role", Type: "string", Description: rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]},
		ageColumn,
		{Name: "Users", Type: "string", Priority: 1, Description: "Users in the " + what},
		{Name: "Groups", Type: "string", Priority: 1, Description: "Groups in the " + what},
		{Name: "ServiceAccounts", Type: "string", Priority: 1, Description: "ServiceAccounts in the " + what},
	}
}

func bindingRow(name string, ref rbacv1.RoleRef, ss []rbacv1.Subject, created metav1.Time, now time.Time) []any {
	var users, groups, sas []string
	for _, s := range ss {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		}
	}
	return []any{name, ref.Kind + "/" + ref.Name, age(created, now), strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}
}
