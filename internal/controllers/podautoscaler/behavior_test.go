package podautoscaler

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

func hpaFor(minR, maxR int32, b *autoscalingv2.HorizontalPodAutoscalerBehavior) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: &minR, MaxReplicas: maxR, Behavior: b}}
}

func condition(hpa *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) autoscalingv2.HorizontalPodAutoscalerCondition {
	for _, c := range hpa.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return autoscalingv2.HorizontalPodAutoscalerCondition{}
}

// TestNormalizeWithoutBehavior: the highest recommendation of the last
// window wins a scale-down; a scale-up is at most double (or 4); min and
// max bound the result, with ScalingLimited saying which.
func TestNormalizeWithoutBehavior(t *testing.T) {
	type step struct {
		after            time.Duration
		current, desired int32
		want             int32
		able, limited    string
	}
	tests := []struct {
		name     string
		min, max int32
		steps    []step
	}{
		{name: "scale-down waits out the window", min: 1, max: 10, steps: []step{
			{0, 5, 5, 5, "ReadyForNewScale", "DesiredWithinRange"},
			{time.Minute, 5, 2, 5, "ScaleDownStabilized", "DesiredWithinRange"},
			{5*time.Minute + time.Second, 5, 2, 2, "ReadyForNewScale", "DesiredWithinRange"},
		}},
		{name: "scale-up at most doubles", min: 1, max: 100, steps: []step{
			{0, 3, 20, 6, "ReadyForNewScale", "ScaleUpLimit"},
		}},
		{name: "scale-up from 1 reaches 4", min: 1, max: 100, steps: []step{
			{0, 1, 9, 4, "ReadyForNewScale", "ScaleUpLimit"},
		}},
		{name: "max", min: 1, max: 5, steps: []step{
			{0, 4, 7, 5, "ReadyForNewScale", "TooManyReplicas"},
		}},
		{name: "min", min: 2, max: 5, steps: []step{
			// After the window of the initial recommendation.
			{6 * time.Minute, 2, 1, 2, "ReadyForNewScale", "TooFewReplicas"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory()
			now := epoch
			h.recordInitial("k", tt.steps[0].current, now)
			for i, s := range tt.steps {
				now = epoch.Add(s.after)
				hpa := hpaFor(tt.min, tt.max, nil)
				got := h.normalize(hpa, "k", s.current, s.desired, tt.min, DefaultDownscaleStabilization, now)
				if got != s.want {
					t.Errorf("step %d: %d, want %d", i, got, s.want)
				}
				if c := condition(hpa, autoscalingv2.AbleToScale); c.Reason != s.able {
					t.Errorf("step %d: AbleToScale %s, want %s", i, c.Reason, s.able)
				}
				limited := condition(hpa, autoscalingv2.ScalingLimited)
				if limited.Reason != s.limited || (limited.Status == corev1.ConditionTrue) != (s.want != s.desired && s.able == "ReadyForNewScale") {
					t.Errorf("step %d: ScalingLimited %s %s, want %s", i, limited.Status, limited.Reason, s.limited)
				}
			}
		})
	}
}

func behavior(upWindow, downWindow int32, up, down []autoscalingv2.HPAScalingPolicy) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	maxSel := autoscalingv2.MaxChangePolicySelect
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &upWindow, SelectPolicy: &maxSel, Policies: up},
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &downWindow, SelectPolicy: &maxSel, Policies: down},
	}
}

func pods(n, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: n, PeriodSeconds: period}
}

func percent(n, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: n, PeriodSeconds: period}
}

// TestNormalizeWithBehavior drives sequences of recommendations through
// behavior's windows and policies, recording each rescale as the
// controller does.
func TestNormalizeWithBehavior(t *testing.T) {
	type step struct {
		after            time.Duration
		current, desired int32
		want             int32
		limited          string
	}
	tests := []struct {
		name  string
		b     *autoscalingv2.HorizontalPodAutoscalerBehavior
		steps []step
	}{
		{name: "pods policy: 2 per minute", b: behavior(0, 0, []autoscalingv2.HPAScalingPolicy{pods(2, 60)}, []autoscalingv2.HPAScalingPolicy{percent(100, 15)}),
			steps: []step{
				{0, 1, 10, 3, "ScaleUpLimit"},
				{20 * time.Second, 3, 10, 3, "ScaleUpLimit"}, // 2 already added this minute
				{61 * time.Second, 3, 10, 5, "ScaleUpLimit"},
			}},
		{name: "percent policy: scale-down by half per 30 s", b: behavior(0, 0, []autoscalingv2.HPAScalingPolicy{pods(4, 15)}, []autoscalingv2.HPAScalingPolicy{percent(50, 30)}),
			steps: []step{
				{0, 8, 1, 4, "ScaleDownLimit"},
				{10 * time.Second, 4, 1, 4, "ScaleDownLimit"},
				{31 * time.Second, 4, 1, 2, "ScaleDownLimit"},
			}},
		{name: "scale-down window keeps the highest", b: behavior(0, 30, []autoscalingv2.HPAScalingPolicy{pods(4, 15)}, []autoscalingv2.HPAScalingPolicy{percent(100, 15)}),
			steps: []step{
				{0, 4, 4, 4, "DesiredWithinRange"},
				{10 * time.Second, 4, 1, 4, "DesiredWithinRange"},
				{41 * time.Second, 4, 1, 1, "DesiredWithinRange"},
			}},
		{name: "scale-up window keeps the lowest", b: behavior(30, 0, []autoscalingv2.HPAScalingPolicy{pods(10, 15)}, []autoscalingv2.HPAScalingPolicy{percent(100, 15)}),
			steps: []step{
				{0, 2, 2, 2, "DesiredWithinRange"},
				{10 * time.Second, 2, 6, 2, "DesiredWithinRange"},
				{41 * time.Second, 2, 6, 6, "DesiredWithinRange"},
			}},
		{name: "max", b: behavior(0, 0, []autoscalingv2.HPAScalingPolicy{pods(100, 15)}, []autoscalingv2.HPAScalingPolicy{percent(100, 15)}),
			steps: []step{{0, 2, 50, 10, "TooManyReplicas"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory()
			h.recordInitial("k", tt.steps[0].current, epoch)
			for i, s := range tt.steps {
				now := epoch.Add(s.after)
				hpa := hpaFor(1, 10, tt.b)
				got := h.normalizeWithBehavior(hpa, "k", s.current, s.desired, 1, now)
				if got != s.want {
					t.Errorf("step %d: %d, want %d", i, got, s.want)
				}
				if c := condition(hpa, autoscalingv2.ScalingLimited); c.Reason != s.limited {
					t.Errorf("step %d: ScalingLimited %s (%s), want %s", i, c.Reason, c.Message, s.limited)
				}
				if got != s.current {
					h.recordScale(tt.b, "k", s.current, got, now)
				}
			}
		})
	}
}

func TestScaleLimitsSelectPolicy(t *testing.T) {
	minSel, disabled := autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect
	policies := []autoscalingv2.HPAScalingPolicy{pods(4, 60), percent(100, 60)}
	tests := []struct {
		name     string
		sel      *autoscalingv2.ScalingPolicySelect
		up, down int32
	}{
		{"max change", nil, 20, 0},
		{"min change", &minSel, 14, 6},
		{"disabled", &disabled, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := &autoscalingv2.HPAScalingRules{SelectPolicy: tt.sel, Policies: policies}
			if got := scaleUpLimit(10, nil, nil, rules, epoch); got != tt.up {
				t.Errorf("scale-up limit %d, want %d", got, tt.up)
			}
			if got := scaleDownLimit(10, nil, nil, rules, epoch); got != tt.down {
				t.Errorf("scale-down limit %d, want %d", got, tt.down)
			}
		})
	}
}
