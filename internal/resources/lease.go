package resources

import (
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Leases is coordination.k8s.io/v1 leases: node heartbeats and leader election.
func Leases() *Resource {
	return &Resource{
		GVR:          coordinationv1.SchemeGroupVersion.WithResource("leases"),
		Kind:         "Lease",
		SingularName: "lease",
		Namespaced:   true,
		New:          func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:      func() runtime.Object { return &coordinationv1.LeaseList{} },
		Validate:     typedValidate(validateLease),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Holder", Type: "string", Description: coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]},
			ageColumn,
		},
		Row: typedRowNow(leaseRow),
	}
}

var leaseStrategies = []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	errs := validateMeta(&l.ObjectMeta, true, nameIsDNSSubdomain)
	p := field.NewPath("spec")
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if t := l.Spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(p.Child("leaseTransitions"), *t, isNegativeErrorMsg))
	}
	// Built-in strategies are bare words; custom ones are domain-prefixed.
	if s := l.Spec.Strategy; s != nil {
		if !strings.Contains(string(*s), "/") {
			if !oneOf(*s, leaseStrategies...) {
				errs = append(errs, field.NotSupported(p.Child("strategy"), *s, leaseStrategies))
			}
		} else {
			errs = append(errs, validateQualifiedName(string(*s), p.Child("strategy"))...)
		}
	}
	if ph := l.Spec.PreferredHolder; ph != nil && *ph != "" && (l.Spec.Strategy == nil || *l.Spec.Strategy == "") {
		errs = append(errs, field.Forbidden(p.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

func leaseRow(l *coordinationv1.Lease, now time.Time) []any {
	return []any{l.Name, deref(l.Spec.HolderIdentity, ""), age(l.CreationTimestamp, now)}
}
