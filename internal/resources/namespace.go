package resources

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Namespaces is core/v1 namespaces.
func Namespaces() *Resource {
	return &Resource{
		GVR:              corev1.SchemeGroupVersion.WithResource("namespaces"),
		Kind:             "Namespace",
		SingularName:     "namespace",
		ShortNames:       []string{"ns"},
		New:              func() runtime.Object { return &corev1.Namespace{} },
		NewList:          func() runtime.Object { return &corev1.NamespaceList{} },
		HasStatus:        true,
		Default:          typed(defaultNamespace),
		PrepareForCreate: typed(prepareNamespaceForCreate),
		Validate:         typedValidate(validateNamespace),
		ValidateStatus: typedValidateUpdate(func(ns, _ *corev1.Namespace) field.ErrorList {
			phases := []corev1.NamespacePhase{corev1.NamespaceActive, corev1.NamespaceTerminating}
			if !oneOf(ns.Status.Phase, phases...) {
				return field.ErrorList{field.NotSupported(field.NewPath("status", "phase"), ns.Status.Phase, phases)}
			}
			return nil
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Status", Type: "string", Description: "The status of the namespace"},
			ageColumn,
		},
		Row: typedRowNow(namespaceRow),
		Fields: typedFields(func(ns *corev1.Namespace) fields.Set {
			return fields.Set{"status.phase": string(ns.Status.Phase)}
		}),
	}
}

// defaultNamespace labels a namespace with its name so that selectors can
// pick namespaces by name (kubernetes.io/metadata.name).
func defaultNamespace(ns *corev1.Namespace) {
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// prepareNamespaceForCreate adds the "kubernetes" finalizer, which the
// namespace controller removes once everything in the namespace is gone.
func prepareNamespaceForCreate(ns *corev1.Namespace) {
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

var standardFinalizers = []string{string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := validateMeta(&ns.ObjectMeta, false, apivalidation.ValidateNamespaceName)
	p := field.NewPath("spec", "finalizers")
	for _, f := range ns.Spec.Finalizers {
		errs = append(errs, apivalidation.ValidateFinalizerName(string(f), p)...)
		if !strings.Contains(string(f), "/") && !oneOf(string(f), standardFinalizers...) {
			errs = append(errs, field.Invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

func namespaceRow(ns *corev1.Namespace, now time.Time) []any {
	return []any{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp, now)}
}
