package resources

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWebhookConfigurations(t *testing.T) {
	none := admissionregistrationv1.SideEffectClassNone
	hook := func() admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    "validate.cert-manager.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "cert-manager", Name: "cert-manager-webhook"}},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE"}}},
		}
	}
	r := ValidatingWebhookConfigurations()
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cert-manager-webhook"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{hook()}}
	r.Default(c)
	w := c.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.MatchPolicy != admissionregistrationv1.Equivalent || *w.TimeoutSeconds != 10 ||
		*w.ClientConfig.Service.Port != 443 || *w.Rules[0].Scope != admissionregistrationv1.AllScopes || w.NamespaceSelector == nil {
		t.Errorf("defaulted webhook %+v", w)
	}
	checkErrs(t, r.Validate(c))
	for _, tc := range []struct {
		name   string
		mutate func(*admissionregistrationv1.ValidatingWebhook)
		want   wantErr
	}{
		{"no name", func(w *admissionregistrationv1.ValidatingWebhook) { w.Name = "" }, required("webhooks[0].name")},
		{"short name", func(w *admissionregistrationv1.ValidatingWebhook) { w.Name = "validate" }, invalid("webhooks[0].name")},
		{"no side effects", func(w *admissionregistrationv1.ValidatingWebhook) { w.SideEffects = nil }, required("webhooks[0].sideEffects")},
		{"no review versions", func(w *admissionregistrationv1.ValidatingWebhook) { w.AdmissionReviewVersions = nil }, required("webhooks[0].admissionReviewVersions")},
		{"unknown review versions", func(w *admissionregistrationv1.ValidatingWebhook) { w.AdmissionReviewVersions = []string{"v2"} },
			invalid("webhooks[0].admissionReviewVersions")},
		{"no client", func(w *admissionregistrationv1.ValidatingWebhook) {
			w.ClientConfig = admissionregistrationv1.WebhookClientConfig{}
		},
			required("webhooks[0].clientConfig")},
		{"no service name", func(w *admissionregistrationv1.ValidatingWebhook) { w.ClientConfig.Service.Name = "" },
			required("webhooks[0].clientConfig.service.name")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := c.DeepCopy()
			tc.mutate(&bad.Webhooks[0])
			checkErrs(t, r.Validate(bad), tc.want)
		})
	}
	dup := c.DeepCopy()
	dup.Webhooks = append(dup.Webhooks, dup.Webhooks[0])
	checkErrs(t, r.Validate(dup), duplicate("webhooks[1].name"))

	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mutate"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{
		Name: "mutate.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptrTo("https://example.com/mutate")},
		SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
	}}}
	mr := MutatingWebhookConfigurations()
	mr.Default(m)
	if *m.Webhooks[0].ReinvocationPolicy != admissionregistrationv1.NeverReinvocationPolicy {
		t.Errorf("reinvocation policy %v", *m.Webhooks[0].ReinvocationPolicy)
	}
	checkErrs(t, mr.Validate(m))
	m.Webhooks[0].SideEffects = ptrTo(admissionregistrationv1.SideEffectClassSome)
	checkErrs(t, mr.Validate(m), notSupported("webhooks[0].sideEffects"))
	if row := mr.Row(m); row[1] != int64(1) {
		t.Errorf("row %v", row)
	}
}

func TestValidatingAdmissionPolicies(t *testing.T) {
	r := ValidatingAdmissionPolicies()
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{}}},
			Validations:      []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 5"}},
		},
	}
	r.Default(p)
	if *p.Spec.FailurePolicy != admissionregistrationv1.Fail || *p.Spec.MatchConstraints.MatchPolicy != admissionregistrationv1.Equivalent {
		t.Errorf("defaulted policy %+v", p.Spec)
	}
	checkErrs(t, r.Validate(p))
	for _, tc := range []struct {
		mutate func(*admissionregistrationv1.ValidatingAdmissionPolicy)
		want   wantErr
	}{
		{func(p *admissionregistrationv1.ValidatingAdmissionPolicy) { p.Spec.Validations = nil }, required("spec.validations")},
		{func(p *admissionregistrationv1.ValidatingAdmissionPolicy) { p.Spec.Validations[0].Expression = "" }, required("spec.validations[0].expression")},
		{func(p *admissionregistrationv1.ValidatingAdmissionPolicy) { p.Spec.MatchConstraints = nil }, required("spec.matchConstraints")},
		{func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.FailurePolicy = ptrTo(admissionregistrationv1.FailurePolicyType("Maybe"))
		},
			notSupported("spec.failurePolicy")},
	} {
		bad := p.DeepCopy()
		tc.mutate(bad)
		checkErrs(t, r.Validate(bad), tc.want)
	}
	p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
	if row := r.Row(p); row[1] != int64(1) || row[2] != "v1/ConfigMap" {
		t.Errorf("row %v", row)
	}

	br := ValidatingAdmissionPolicyBindings()
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit-prod"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "replica-limit", ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			ParamRef: &admissionregistrationv1.ParamRef{Name: "limits"},
		},
	}
	br.Default(b)
	checkErrs(t, br.Validate(b))
	for _, tc := range []struct {
		mutate func(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
		want   wantErr
	}{
		{func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec.PolicyName = "" }, required("spec.policyName")},
		{func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec.ValidationActions = nil }, required("spec.validationActions")},
		{func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{"Block"}
		},
			notSupported("spec.validationActions[0]")},
		{func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{"Deny", "Deny"}
		}, duplicate("spec.validationActions[1]")},
		{func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec.ParamRef.Name = "" }, required("spec.paramRef")},
	} {
		bad := b.DeepCopy()
		tc.mutate(bad)
		checkErrs(t, br.Validate(bad), tc.want)
	}
	if row := br.Row(b); row[1] != "replica-limit" || row[2] != "*/limits" {
		t.Errorf("row %v", row)
	}
}
