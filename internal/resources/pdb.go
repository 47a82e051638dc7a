package resources

import (
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodDisruptionBudgets is policy/v1 poddisruptionbudgets. The disruption
// controller (internal/controllers/disruption) writes their status; the
// eviction subresource (internal/apiserver/eviction.go) reads and updates it.
func PodDisruptionBudgets() *Resource {
	return &Resource{
		GVR:          policyv1.SchemeGroupVersion.WithResource("poddisruptionbudgets"),
		Kind:         "PodDisruptionBudget",
		SingularName: "poddisruptionbudget",
		Namespaced:   true,
		ShortNames:   []string{"pdb"},
		New:          func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
		NewList:      func() runtime.Object { return &policyv1.PodDisruptionBudgetList{} },
		HasStatus:    true,
		Validate:     typedValidate(validatePDB),
		ValidateStatus: typedValidateUpdate(func(pdb, _ *policyv1.PodDisruptionBudget) field.ErrorList {
			p, s := field.NewPath("status"), &pdb.Status
			errs := validateNonnegative(int64(s.DisruptionsAllowed), p.Child("disruptionsAllowed"))
			errs = append(errs, validateNonnegative(int64(s.CurrentHealthy), p.Child("currentHealthy"))...)
			errs = append(errs, validateNonnegative(int64(s.DesiredHealthy), p.Child("desiredHealthy"))...)
			return append(errs, validateNonnegative(int64(s.ExpectedPods), p.Child("expectedPods"))...)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Min Available", Type: "string", Description: "The minimum number of pods that must be available."},
			{Name: "Max Unavailable", Type: "string", Description: "The maximum number of pods that may be unavailable."},
			{Name: "Allowed Disruptions", Type: "integer", Description: "Calculated number of pods that may be disrupted at this time."},
			ageColumn,
		},
		Row: typedRowNow(pdbRow),
	}
}

var unhealthyPodEvictionPolicies = []policyv1.UnhealthyPodEvictionPolicyType{policyv1.AlwaysAllow, policyv1.IfHealthyBudget}

// validatePDB follows Kubernetes: minAvailable and maxUnavailable may not
// both be set (a budget with neither is accepted, as upstream does), each
// a non-negative count or a percentage up to 100%.
func validatePDB(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	errs := validateMeta(&pdb.ObjectMeta, true, nameIsDNSSubdomain)
	s, p := &pdb.Spec, field.NewPath("spec")
	if s.MinAvailable != nil && s.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(p, s, "minAvailable and maxUnavailable cannot be both set"))
	}
	errs = append(errs, validateIntOrPercentUpTo100(s.MinAvailable, p.Child("minAvailable"))...)
	errs = append(errs, validateIntOrPercentUpTo100(s.MaxUnavailable, p.Child("maxUnavailable"))...)
	errs = append(errs, validateLabelSelector(s.Selector, p.Child("selector"))...)
	if u := s.UnhealthyPodEvictionPolicy; u != nil && !oneOf(*u, unhealthyPodEvictionPolicies...) {
		errs = append(errs, field.NotSupported(p.Child("unhealthyPodEvictionPolicy"), *u, unhealthyPodEvictionPolicies))
	}
	return errs
}

func validateIntOrPercentUpTo100(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	errs := validateIntOrPercent(v, p)
	if n, ok := percentValue(v); ok && n > 100 && len(errs) == 0 {
		errs = append(errs, field.Invalid(p, v.StrVal, "must not be greater than 100%"))
	}
	return errs
}

func pdbRow(pdb *policyv1.PodDisruptionBudget, now time.Time) []any {
	minAvailable, maxUnavailable := "N/A", "N/A"
	if v := pdb.Spec.MinAvailable; v != nil {
		minAvailable = v.String()
	}
	if v := pdb.Spec.MaxUnavailable; v != nil {
		maxUnavailable = v.String()
	}
	return []any{pdb.Name, minAvailable, maxUnavailable, int64(pdb.Status.DisruptionsAllowed), age(pdb.CreationTimestamp, now)}
}
