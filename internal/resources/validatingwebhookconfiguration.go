package resources

import (
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The admissionregistration.k8s.io kinds are stored, defaulted and checked
// for names and required fields only: Wharf does not call webhooks or
// evaluate policies yet, but charts install them with everything else.

// ValidatingWebhookConfigurations is admissionregistration.k8s.io/v1
// validatingwebhookconfigurations.
func ValidatingWebhookConfigurations() *Resource {
	return &Resource{
		GVR:          admissionregistrationv1.SchemeGroupVersion.WithResource("validatingwebhookconfigurations"),
		Kind:         "ValidatingWebhookConfiguration",
		SingularName: "validatingwebhookconfiguration",
		Categories:   []string{"api-extensions"},
		New:          func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
		NewList:      func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfigurationList{} },
		Default: typed(func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			for i := range c.Webhooks {
				w := &c.Webhooks[i]
				defaultWebhook(webhookFields{&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, &w.ClientConfig, w.Rules})
			}
		}),
		Validate: typedValidate(func(c *admissionregistrationv1.ValidatingWebhookConfiguration) field.ErrorList {
			errs := validateMeta(&c.ObjectMeta, false, nameIsDNSSubdomain)
			hooks := make([]webhook, len(c.Webhooks))
			for i, w := range c.Webhooks {
				hooks[i] = webhook{w.Name, w.ClientConfig, w.SideEffects, w.AdmissionReviewVersions}
			}
			return append(errs, validateWebhooks(hooks)...)
		}),
		Columns: webhookColumns,
		Row: typedRowNow(func(c *admissionregistrationv1.ValidatingWebhookConfiguration, now time.Time) []any {
			return []any{c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp, now)}
		}),
	}
}

var webhookColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Webhooks", Type: "integer", Description: "Webhooks indicates the number of webhooks registered in this configuration"},
	ageColumn,
}

// webhookFields are the defaulted fields validating and mutating webhooks share.
type webhookFields struct {
	failurePolicy     **admissionregistrationv1.FailurePolicyType
	matchPolicy       **admissionregistrationv1.MatchPolicyType
	namespaceSelector **metav1.LabelSelector
	objectSelector    **metav1.LabelSelector
	timeoutSeconds    **int32
	clientConfig      *admissionregistrationv1.WebhookClientConfig
	rules             []admissionregistrationv1.RuleWithOperations
}

func defaultWebhook(w webhookFields) {
	if *w.failurePolicy == nil {
		*w.failurePolicy = ptrTo(admissionregistrationv1.Fail)
	}
	if *w.matchPolicy == nil {
		*w.matchPolicy = ptrTo(admissionregistrationv1.Equivalent)
	}
	if *w.namespaceSelector == nil {
		*w.namespaceSelector = &metav1.LabelSelector{}
	}
	if *w.objectSelector == nil {
		*w.objectSelector = &metav1.LabelSelector{}
	}
	if *w.timeoutSeconds == nil {
		*w.timeoutSeconds = ptrTo(int32(10))
	}
	if s := w.clientConfig.Service; s != nil && s.Port == nil {
		s.Port = ptrTo(int32(443))
	}
	defaultAdmissionRules(w.rules)
}

func defaultAdmissionRules(rules []admissionregistrationv1.RuleWithOperations) {
	for i := range rules {
		if rules[i].Scope == nil {
			rules[i].Scope = ptrTo(admissionregistrationv1.AllScopes)
		}
	}
}

// webhook is what is validated of a validating or mutating webhook.
type webhook struct {
	name          string
	clientConfig  admissionregistrationv1.WebhookClientConfig
	sideEffects   *admissionregistrationv1.SideEffectClass
	reviewVersion []string
}

var (
	sideEffectClasses       = []admissionregistrationv1.SideEffectClass{admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun}
	admissionReviewVersions = []string{"v1", "v1beta1"}
)

func validateWebhooks(hooks []webhook) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, h := range hooks {
		p := field.NewPath("webhooks").Index(i)
		errs = append(errs, validation.IsFullyQualifiedName(p.Child("name"), h.name)...)
		if names[h.name] {
			errs = append(errs, field.Duplicate(p.Child("name"), h.name))
		}
		names[h.name] = true
		switch se := h.sideEffects; {
		case se == nil:
			errs = append(errs, field.Required(p.Child("sideEffects"), fmt.Sprintf("must specify one of %v", "None, NoneOnDryRun")))
		case !oneOf(*se, sideEffectClasses...):
			errs = append(errs, field.NotSupported(p.Child("sideEffects"), *se, sideEffectClasses))
		}
		vp := p.Child("admissionReviewVersions")
		switch {
		case len(h.reviewVersion) == 0:
			errs = append(errs, field.Required(vp, "must specify one of v1, v1beta1"))
		case !anyOf(h.reviewVersion, admissionReviewVersions):
			errs = append(errs, field.Invalid(vp, h.reviewVersion, "must include at least one of v1, v1beta1"))
		}
		cp := p.Child("clientConfig")
		cc := h.clientConfig
		switch {
		case (cc.URL == nil) == (cc.Service == nil):
			errs = append(errs, field.Required(cp, "exactly one of url or service is required"))
		case cc.Service != nil:
			sp := cp.Child("service")
			errs = append(errs, validateName(nameIsDNS1035Label, cc.Service.Name, sp.Child("name"))...)
			errs = append(errs, validateName(nameIsDNSLabel, cc.Service.Namespace, sp.Child("namespace"))...)
			if port := cc.Service.Port; port != nil {
				errs = append(errs, validatePortNum(*port, sp.Child("port"))...)
			}
		case *cc.URL == "":
			errs = append(errs, field.Required(cp.Child("url"), ""))
		}
	}
	return errs
}

func anyOf(have, valid []string) bool {
	for _, h := range have {
		if oneOf(h, valid...) {
			return true
		}
	}
	return false
}
