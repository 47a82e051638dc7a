package resources

import (
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidatingAdmissionPolicyBindings is admissionregistration.k8s.io/v1
// validatingadmissionpolicybindings (stored only).
func ValidatingAdmissionPolicyBindings() *Resource {
	return &Resource{
		GVR:          admissionregistrationv1.SchemeGroupVersion.WithResource("validatingadmissionpolicybindings"),
		Kind:         "ValidatingAdmissionPolicyBinding",
		SingularName: "validatingadmissionpolicybinding",
		Categories:   []string{"api-extensions"},
		New:          func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{} },
		NewList:      func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{} },
		Default: typed(func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			defaultMatchResources(b.Spec.MatchResources)
		}),
		Validate: typedValidate(validateValidatingAdmissionPolicyBinding),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "PolicyName", Type: "string", Description: "PolicyName indicates the policy definition which the policy binding binded to"},
			{Name: "ParamRef", Type: "string", Description: "ParamRef indicates the param resource which sets the configration param"},
			ageColumn,
		},
		Row: typedRowNow(func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding, now time.Time) []any {
			param := "<unset>"
			if pr := b.Spec.ParamRef; pr != nil {
				switch {
				case pr.Name != "" && pr.Namespace != "":
					param = pr.Namespace + "/" + pr.Name
				case pr.Name != "":
					// The param may be cluster-scoped: kubectl cannot tell.
					param = "*/" + pr.Name
				case pr.Selector != nil:
					param = pr.Selector.String()
				}
			}
			return []any{b.Name, b.Spec.PolicyName, param, age(b.CreationTimestamp, now)}
		}),
	}
}

var validationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit, admissionregistrationv1.Deny, admissionregistrationv1.Warn}

func validateValidatingAdmissionPolicyBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) field.ErrorList {
	errs := validateMeta(&b.ObjectMeta, false, nameIsDNSSubdomain)
	s, p := &b.Spec, field.NewPath("spec")
	errs = append(errs, validateName(nameIsDNSSubdomain, s.PolicyName, p.Child("policyName"))...)
	if pr := s.ParamRef; pr != nil {
		pp := p.Child("paramRef")
		switch {
		case pr.Name == "" && pr.Selector == nil:
			errs = append(errs, field.Required(pp, "one of name or selector must be specified"))
		case pr.Name != "" && pr.Selector != nil:
			errs = append(errs, field.Forbidden(pp.Child("name"), "name and selector are mutually exclusive"))
		}
	}
	ap := p.Child("validationActions")
	if len(s.ValidationActions) == 0 {
		errs = append(errs, field.Required(ap, "at least one validation action is required"))
	}
	seen := map[admissionregistrationv1.ValidationAction]bool{}
	for i, a := range s.ValidationActions {
		switch {
		case seen[a]:
			errs = append(errs, field.Duplicate(ap.Index(i), a))
		case !oneOf(a, validationActions...):
			errs = append(errs, field.NotSupported(ap.Index(i), a, validationActions))
		}
		seen[a] = true
	}
	return errs
}
