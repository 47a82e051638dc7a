package resources

import (
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MutatingWebhookConfigurations is admissionregistration.k8s.io/v1
// mutatingwebhookconfigurations (stored only; see ValidatingWebhookConfigurations).
func MutatingWebhookConfigurations() *Resource {
	return &Resource{
		GVR:          admissionregistrationv1.SchemeGroupVersion.WithResource("mutatingwebhookconfigurations"),
		Kind:         "MutatingWebhookConfiguration",
		SingularName: "mutatingwebhookconfiguration",
		Categories:   []string{"api-extensions"},
		New:          func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfiguration{} },
		NewList:      func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfigurationList{} },
		Default: typed(func(c *admissionregistrationv1.MutatingWebhookConfiguration) {
			for i := range c.Webhooks {
				w := &c.Webhooks[i]
				defaultWebhook(webhookFields{&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, &w.ClientConfig, w.Rules})
				if w.ReinvocationPolicy == nil {
					w.ReinvocationPolicy = ptrTo(admissionregistrationv1.NeverReinvocationPolicy)
				}
			}
		}),
		Validate: typedValidate(func(c *admissionregistrationv1.MutatingWebhookConfiguration) field.ErrorList {
			errs := validateMeta(&c.ObjectMeta, false, nameIsDNSSubdomain)
			hooks := make([]webhook, len(c.Webhooks))
			for i, w := range c.Webhooks {
				hooks[i] = webhook{w.Name, w.ClientConfig, w.SideEffects, w.AdmissionReviewVersions}
			}
			return append(errs, validateWebhooks(hooks)...)
		}),
		Columns: webhookColumns,
		Row: typedRowNow(func(c *admissionregistrationv1.MutatingWebhookConfiguration, now time.Time) []any {
			return []any{c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp, now)}
		}),
	}
}
