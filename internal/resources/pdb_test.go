package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodDisruptionBudget(t *testing.T) {
	newPDB := func() *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MinAvailable: ptrTo(intstr.FromInt32(2)),
				Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			},
		}
	}
	tests := []struct {
		name   string
		mutate func(*policyv1.PodDisruptionBudget)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "percent maxUnavailable", mutate: func(p *policyv1.PodDisruptionBudget) {
			p.Spec.MinAvailable, p.Spec.MaxUnavailable = nil, ptrTo(intstr.FromString("25%"))
		}},
		{name: "neither, as Kubernetes accepts", mutate: func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = nil }},
		{name: "both", mutate: func(p *policyv1.PodDisruptionBudget) { p.Spec.MaxUnavailable = ptrTo(intstr.FromInt32(1)) }, want: []wantErr{invalid("spec")}},
		{name: "negative", mutate: func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = ptrTo(intstr.FromInt32(-1)) },
			want: []wantErr{invalid("spec.minAvailable")}},
		{name: "over 100%", mutate: func(p *policyv1.PodDisruptionBudget) {
			p.Spec.MinAvailable, p.Spec.MaxUnavailable = nil, ptrTo(intstr.FromString("150%"))
		}, want: []wantErr{invalid("spec.maxUnavailable")}},
		{name: "not a percent", mutate: func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = ptrTo(intstr.FromString("half")) },
			want: []wantErr{invalid("spec.minAvailable")}},
		{name: "bad selector", mutate: func(p *policyv1.PodDisruptionBudget) {
			p.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
		}, want: []wantErr{invalid("spec.selector.matchExpressions[0].operator")}},
		{name: "eviction policy", mutate: func(p *policyv1.PodDisruptionBudget) {
			p.Spec.UnhealthyPodEvictionPolicy = ptrTo(policyv1.UnhealthyPodEvictionPolicyType("Never"))
		}, want: []wantErr{notSupported("spec.unhealthyPodEvictionPolicy")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPDB()
			if tt.mutate != nil {
				tt.mutate(p)
			}
			checkErrs(t, PodDisruptionBudgets().Validate(p), tt.want...)
		})
	}
	p := newPDB()
	bad := p.DeepCopy()
	bad.Status.DisruptionsAllowed = -1
	checkErrs(t, PodDisruptionBudgets().ValidateStatus(bad, p), invalid("status.disruptionsAllowed"))
	p.CreationTimestamp = ago(time.Minute)
	p.Status.DisruptionsAllowed = 1
	if diff := cmp.Diff([]any{"web", "2", "N/A", int64(1), "60s"}, pdbRow(p, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
