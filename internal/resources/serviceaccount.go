package resources

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ServiceAccounts is core/v1 serviceaccounts.
func ServiceAccounts() *Resource {
	return &Resource{
		GVR:          corev1.SchemeGroupVersion.WithResource("serviceaccounts"),
		Kind:         "ServiceAccount",
		SingularName: "serviceaccount",
		Namespaced:   true,
		ShortNames:   []string{"sa"},
		New:          func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList:      func() runtime.Object { return &corev1.ServiceAccountList{} },
		Validate: typedValidate(func(sa *corev1.ServiceAccount) field.ErrorList {
			errs := validateMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)
			for i, s := range sa.ImagePullSecrets {
				errs = append(errs, validateName(nameIsDNSSubdomain, s.Name, field.NewPath("imagePullSecrets").Index(i).Child("name"))...)
			}
			return errs
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Secrets", Type: "string", Description: corev1.ServiceAccount{}.SwaggerDoc()["secrets"]},
			ageColumn,
		},
		Row: typedRowNow(serviceAccountRow),
	}
}

func serviceAccountRow(sa *corev1.ServiceAccount, now time.Time) []any {
	return []any{sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp, now)}
}
