package resources

import (
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidatingAdmissionPolicies is admissionregistration.k8s.io/v1
// validatingadmissionpolicies: stored with their CEL expressions
// unevaluated (the status, type checking, is left empty).
func ValidatingAdmissionPolicies() *Resource {
	return &Resource{
		GVR:          admissionregistrationv1.SchemeGroupVersion.WithResource("validatingadmissionpolicies"),
		Kind:         "ValidatingAdmissionPolicy",
		SingularName: "validatingadmissionpolicy",
		Categories:   []string{"api-extensions"},
		New:          func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicy{} },
		NewList:      func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyList{} },
		HasStatus:    true,
		Default: typed(func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			if p.Spec.FailurePolicy == nil {
				p.Spec.FailurePolicy = ptrTo(admissionregistrationv1.Fail)
			}
			defaultMatchResources(p.Spec.MatchConstraints)
		}),
		Validate: typedValidate(validateValidatingAdmissionPolicy),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Validations", Type: "integer", Description: "Validations indicates the number of validation rules defined in this configuration"},
			{Name: "ParamKind", Type: "string", Description: "ParamKind specifies the kind of resources used to parameterize this policy"},
			ageColumn,
		},
		Row: typedRowNow(func(p *admissionregistrationv1.ValidatingAdmissionPolicy, now time.Time) []any {
			paramKind := "<unset>"
			if pk := p.Spec.ParamKind; pk != nil {
				paramKind = pk.APIVersion + "/" + pk.Kind
			}
			return []any{p.Name, int64(len(p.Spec.Validations)), paramKind, age(p.CreationTimestamp, now)}
		}),
	}
}

func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	if m.MatchPolicy == nil {
		m.MatchPolicy = ptrTo(admissionregistrationv1.Equivalent)
	}
	for _, rules := range [][]admissionregistrationv1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rules {
			if rules[i].Scope == nil {
				rules[i].Scope = ptrTo(admissionregistrationv1.AllScopes)
			}
		}
	}
}

var failurePolicies = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail, admissionregistrationv1.Ignore}

func validateValidatingAdmissionPolicy(vap *admissionregistrationv1.ValidatingAdmissionPolicy) field.ErrorList {
	errs := validateMeta(&vap.ObjectMeta, false, nameIsDNSSubdomain)
	s, p := &vap.Spec, field.NewPath("spec")
	if pk := s.ParamKind; pk != nil {
		if pk.Kind == "" {
			errs = append(errs, field.Required(p.Child("paramKind", "kind"), ""))
		}
		if pk.APIVersion == "" {
			errs = append(errs, field.Required(p.Child("paramKind", "apiVersion"), ""))
		}
	}
	mp := p.Child("matchConstraints")
	switch {
	case s.MatchConstraints == nil:
		errs = append(errs, field.Required(mp, ""))
	case len(s.MatchConstraints.ResourceRules) == 0:
		errs = append(errs, field.Required(mp.Child("resourceRules"), ""))
	}
	if len(s.Validations) == 0 && len(s.AuditAnnotations) == 0 {
		errs = append(errs, field.Required(p.Child("validations"), "validations or auditAnnotations must contain at least one item"))
	}
	for i, v := range s.Validations {
		if v.Expression == "" {
			errs = append(errs, field.Required(p.Child("validations").Index(i).Child("expression"), "expression is not specified"))
		}
	}
	for i, a := range s.AuditAnnotations {
		ap := p.Child("auditAnnotations").Index(i)
		if a.Key == "" {
			errs = append(errs, field.Required(ap.Child("key"), ""))
		}
		if a.ValueExpression == "" {
			errs = append(errs, field.Required(ap.Child("valueExpression"), "valueExpression is not specified"))
		}
	}
	if fp := s.FailurePolicy; fp != nil && !oneOf(*fp, failurePolicies...) {
		errs = append(errs, field.NotSupported(p.Child("failurePolicy"), *fp, failurePolicies))
	}
	return errs
}
