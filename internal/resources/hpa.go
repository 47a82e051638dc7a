package resources

import (
	"fmt"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	pathvalidation "k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// HorizontalPodAutoscalers is autoscaling/v2 horizontalpodautoscalers, the
// version they are stored in (HorizontalPodAutoscalersV1 serves them in
// autoscaling/v1 too); the autoscaler itself comes later.
func HorizontalPodAutoscalers() *Resource {
	return &Resource{
		GVR:          autoscalingv2.SchemeGroupVersion.WithResource("horizontalpodautoscalers"),
		Kind:         "HorizontalPodAutoscaler",
		SingularName: "horizontalpodautoscaler",
		Namespaced:   true,
		ShortNames:   []string{"hpa"},
		Categories:   []string{"all"},
		New:          func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		NewList:      func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} },
		HasStatus:    true,
		Default:      typed(defaultHPA),
		// autoscaling/v1's annotations are a view of v2 fields: never stored.
		PrepareForCreate: typed(func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Annotations = dropHPARoundTripAnnotations(h.Annotations)
		}),
		PrepareForUpdate: typedPrepareUpdate(func(h, _ *autoscalingv2.HorizontalPodAutoscaler) {
			h.Annotations = dropHPARoundTripAnnotations(h.Annotations)
		}),
		Validate: typedValidate(validateHPA),
		ValidateStatus: typedValidateUpdate(func(h, _ *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			p := field.NewPath("status")
			errs := validateNonnegative(int64(h.Status.CurrentReplicas), p.Child("currentReplicas"))
			return append(errs, validateNonnegative(int64(h.Status.DesiredReplicas), p.Child("desiredReplicas"))...)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Reference", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]},
			{Name: "Targets", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]},
			{Name: "MinPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]},
			{Name: "MaxPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]},
			{Name: "Replicas", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]},
			ageColumn,
		},
		Row: typedRowNow(hpaRow),
	}
}

// Bounds of scaling behavior (pkg/apis/autoscaling/validation).
const (
	hpaMaxPeriodSeconds              = 1800
	hpaMaxStabilizationWindowSeconds = 3600
	hpaDefaultCPUUtilization         = 80
)

var (
	metricSourceTypes = []autoscalingv2.MetricSourceType{
		autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType, autoscalingv2.ObjectMetricSourceType,
		autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
	}
	selectPolicies = []autoscalingv2.ScalingPolicySelect{autoscalingv2.DisabledPolicySelect, autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect}
	scalingTypes   = []autoscalingv2.HPAScalingPolicyType{autoscalingv2.PercentScalingPolicy, autoscalingv2.PodsScalingPolicy}
)

func defaultHPA(h *autoscalingv2.HorizontalPodAutoscaler) {
	s := &h.Spec
	if s.MinReplicas == nil {
		s.MinReplicas = ptrTo(int32(1))
	}
	if len(s.Metrics) == 0 {
		s.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo(int32(hpaDefaultCPUUtilization))},
			},
		}}
	}
	if b := s.Behavior; b != nil {
		maxPolicy := autoscalingv2.MaxChangePolicySelect
		b.ScaleUp = mergeScalingRules(b.ScaleUp, autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptrTo(int32(0)), SelectPolicy: &maxPolicy,
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		})
		// The scale-down window is left unset: the controller's flag decides it.
		b.ScaleDown = mergeScalingRules(b.ScaleDown, autoscalingv2.HPAScalingRules{
			SelectPolicy: &maxPolicy,
			Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
		})
	}
}

// mergeScalingRules fills the unset fields of from with def's.
func mergeScalingRules(from *autoscalingv2.HPAScalingRules, def autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if from == nil {
		return &def
	}
	if from.SelectPolicy != nil {
		def.SelectPolicy = from.SelectPolicy
	}
	if from.StabilizationWindowSeconds != nil {
		def.StabilizationWindowSeconds = from.StabilizationWindowSeconds
	}
	if from.Policies != nil {
		def.Policies = from.Policies
	}
	if from.Tolerance != nil {
		def.Tolerance = from.Tolerance
	}
	return &def
}

func validateHPA(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	errs := validateMeta(&h.ObjectMeta, true, nameIsDNSSubdomain)
	s, p := &h.Spec, field.NewPath("spec")
	// minReplicas 0 needs the alpha HPAScaleToZero gate upstream.
	if s.MinReplicas != nil && *s.MinReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("minReplicas"), *s.MinReplicas, "must be greater than or equal to 1"))
	}
	if s.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), s.MaxReplicas, "must be greater than 0"))
	}
	if s.MinReplicas != nil && s.MaxReplicas < *s.MinReplicas {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), s.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	errs = append(errs, validateCrossVersionObjectReference(s.ScaleTargetRef, p.Child("scaleTargetRef"))...)
	for i, m := range s.Metrics {
		errs = append(errs, validateMetricSpec(m, p.Child("metrics").Index(i))...)
	}
	if b := s.Behavior; b != nil {
		bp := p.Child("behavior")
		errs = append(errs, validateScalingRules(b.ScaleUp, bp.Child("scaleUp"))...)
		errs = append(errs, validateScalingRules(b.ScaleDown, bp.Child("scaleDown"))...)
	}
	return errs
}

func validatePathSegmentName(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return messages(p, v, pathvalidation.IsValidPathSegmentName(v))
}

func validateCrossVersionObjectReference(ref autoscalingv2.CrossVersionObjectReference, p *field.Path) field.ErrorList {
	errs := validatePathSegmentName(ref.Kind, p.Child("kind"))
	errs = append(errs, validatePathSegmentName(ref.Name, p.Child("name"))...)
	if _, err := schema.ParseGroupVersion(ref.APIVersion); err != nil {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), ref.APIVersion, err.Error()))
	}
	return errs
}

func validateMetricSpec(m autoscalingv2.MetricSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	tp := p.Child("type")
	switch {
	case m.Type == "":
		errs = append(errs, field.Required(tp, "must specify a metric source type"))
	case !oneOf(m.Type, metricSourceTypes...):
		errs = append(errs, field.NotSupported(tp, m.Type, metricSourceTypes))
	}
	sources := []struct {
		name   string
		typ    autoscalingv2.MetricSourceType
		set    bool
		verify func(*field.Path) field.ErrorList
	}{
		{"object", autoscalingv2.ObjectMetricSourceType, m.Object != nil, func(p *field.Path) field.ErrorList {
			errs := validateCrossVersionObjectReference(m.Object.DescribedObject, p.Child("describedObject"))
			errs = append(errs, validateMetricIdentifier(m.Object.Metric, p.Child("metric"))...)
			errs = append(errs, validateMetricTarget(m.Object.Target, p.Child("target"))...)
			if m.Object.Target.Value == nil && m.Object.Target.AverageValue == nil {
				errs = append(errs, field.Required(p.Child("target", "averageValue"), "must set either a target value or averageValue"))
			}
			return errs
		}},
		{"pods", autoscalingv2.PodsMetricSourceType, m.Pods != nil, func(p *field.Path) field.ErrorList {
			errs := validateMetricIdentifier(m.Pods.Metric, p.Child("metric"))
			errs = append(errs, validateMetricTarget(m.Pods.Target, p.Child("target"))...)
			if m.Pods.Target.AverageValue == nil {
				errs = append(errs, field.Required(p.Child("target", "averageValue"), "must specify a positive target averageValue"))
			}
			return errs
		}},
		{"resource", autoscalingv2.ResourceMetricSourceType, m.Resource != nil, func(p *field.Path) field.ErrorList {
			return validateResourceMetric(string(m.Resource.Name), m.Resource.Target, p)
		}},
		{"external", autoscalingv2.ExternalMetricSourceType, m.External != nil, func(p *field.Path) field.ErrorList {
			errs := validateMetricIdentifier(m.External.Metric, p.Child("metric"))
			errs = append(errs, validateMetricTarget(m.External.Target, p.Child("target"))...)
			t := m.External.Target
			switch {
			case t.Value == nil && t.AverageValue == nil:
				errs = append(errs, field.Required(p.Child("target", "averageValue"), "must set either a target value for metric or a per-pod target"))
			case t.Value != nil && t.AverageValue != nil:
				errs = append(errs, field.Forbidden(p.Child("target", "value"), "may not set both a target value for metric and a per-pod target"))
			}
			return errs
		}},
		{"containerResource", autoscalingv2.ContainerResourceMetricSourceType, m.ContainerResource != nil, func(p *field.Path) field.ErrorList {
			cr := m.ContainerResource
			errs := validateResourceMetric(string(cr.Name), cr.Target, p)
			if cr.Container == "" {
				errs = append(errs, field.Required(p.Child("container"), "must specify a container"))
			} else {
				errs = append(errs, validateDNS1123Label(cr.Container, p.Child("container"))...)
			}
			return errs
		}},
	}
	for _, src := range sources {
		switch {
		case src.set && src.typ == m.Type:
			errs = append(errs, src.verify(p.Child(src.name))...)
		case src.set:
			errs = append(errs, field.Forbidden(p.Child(src.name), "must populate the given metric source only"))
		case src.typ == m.Type:
			errs = append(errs, field.Required(p.Child(src.name), "must populate information for the given metric source"))
		}
	}
	return errs
}

func validateResourceMetric(name string, t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must specify a resource name"))
	}
	errs = append(errs, validateMetricTarget(t, p.Child("target"))...)
	switch {
	case t.AverageUtilization == nil && t.AverageValue == nil:
		errs = append(errs, field.Required(p.Child("target", "averageUtilization"), "must set either a target raw value or a target utilization"))
	case t.AverageUtilization != nil && t.AverageValue != nil:
		errs = append(errs, field.Forbidden(p.Child("target", "averageValue"), "may not set both a target raw value and a target utilization"))
	}
	return errs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, p *field.Path) field.ErrorList {
	errs := validatePathSegmentName(id.Name, p.Child("name"))
	if id.Selector != nil {
		errs = append(errs, validateLabelSelector(id.Selector, p.Child("selector"))...)
	}
	return errs
}

var metricTargetTypes = []autoscalingv2.MetricTargetType{autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType}

func validateMetricTarget(t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Type == "" {
		errs = append(errs, field.Required(p.Child("type"), "must specify a metric target type"))
	}
	if !oneOf(t.Type, metricTargetTypes...) {
		errs = append(errs, field.Invalid(p.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		errs = append(errs, field.Invalid(p.Child("value"), t.Value.String(), "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		errs = append(errs, field.Invalid(p.Child("averageValue"), t.AverageValue.String(), "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		errs = append(errs, field.Invalid(p.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	return errs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, p *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil {
		switch {
		case *w < 0:
			errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, "must be greater than or equal to zero"))
		case *w > hpaMaxStabilizationWindowSeconds:
			errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, fmt.Sprintf("must be less than or equal to %d", hpaMaxStabilizationWindowSeconds)))
		}
	}
	if sp := r.SelectPolicy; sp != nil && !oneOf(*sp, selectPolicies...) {
		errs = append(errs, field.NotSupported(p.Child("selectPolicy"), *sp, selectPolicies))
	}
	pp := p.Child("policies")
	if len(r.Policies) == 0 {
		errs = append(errs, field.Required(pp, "must specify at least one Policy"))
	}
	for i, pol := range r.Policies {
		ip := pp.Index(i)
		if !oneOf(pol.Type, scalingTypes...) {
			errs = append(errs, field.NotSupported(ip.Child("type"), pol.Type, scalingTypes))
		}
		if pol.Value <= 0 {
			errs = append(errs, field.Invalid(ip.Child("value"), pol.Value, "must be greater than zero"))
		}
		switch {
		case pol.PeriodSeconds <= 0:
			errs = append(errs, field.Invalid(ip.Child("periodSeconds"), pol.PeriodSeconds, "must be greater than zero"))
		case pol.PeriodSeconds > hpaMaxPeriodSeconds:
			errs = append(errs, field.Invalid(ip.Child("periodSeconds"), pol.PeriodSeconds, fmt.Sprintf("must be less than or equal to %d", hpaMaxPeriodSeconds)))
		}
	}
	if t := r.Tolerance; t != nil && t.Sign() < 0 {
		errs = append(errs, field.Invalid(p.Child("tolerance"), t.String(), "must be greater than or equal to zero"))
	}
	return errs
}

func hpaRow(h *autoscalingv2.HorizontalPodAutoscaler, now time.Time) []any {
	minPods := "<unset>"
	if h.Spec.MinReplicas != nil {
		minPods = fmt.Sprintf("%d", *h.Spec.MinReplicas)
	}
	ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
	return []any{h.Name, ref, hpaTargets(h.Spec.Metrics, h.Status.CurrentMetrics), minPods, int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), age(h.CreationTimestamp, now)}
}

// hpaTargets is kubectl's TARGETS cell: current/target per metric, two at most.
func hpaTargets(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	const unknown = "<unknown>"
	var list []string
	for i, s := range specs {
		var st *autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = &statuses[i]
		}
		switch {
		case s.Type == autoscalingv2.ExternalMetricSourceType && s.External != nil:
			list = append(list, valueTarget(s.External.Target, st != nil && st.External != nil, func() autoscalingv2.MetricValueStatus { return st.External.Current }))
		case s.Type == autoscalingv2.PodsMetricSourceType && s.Pods != nil:
			cur := unknown
			if st != nil && st.Pods != nil && st.Pods.Current.AverageValue != nil {
				cur = st.Pods.Current.AverageValue.String()
			}
			list = append(list, cur+"/"+s.Pods.Target.AverageValue.String())
		case s.Type == autoscalingv2.ObjectMetricSourceType && s.Object != nil:
			list = append(list, valueTarget(s.Object.Target, st != nil && st.Object != nil, func() autoscalingv2.MetricValueStatus { return st.Object.Current }))
		case s.Type == autoscalingv2.ResourceMetricSourceType && s.Resource != nil:
			list = append(list, string(s.Resource.Name)+": "+utilizationTarget(s.Resource.Target, st != nil && st.Resource != nil, func() autoscalingv2.MetricValueStatus { return st.Resource.Current }))
		case s.Type == autoscalingv2.ContainerResourceMetricSourceType && s.ContainerResource != nil:
			list = append(list, string(s.ContainerResource.Name)+": "+utilizationTarget(s.ContainerResource.Target, st != nil && st.ContainerResource != nil, func() autoscalingv2.MetricValueStatus { return st.ContainerResource.Current }))
		default:
			list = append(list, "<unknown type>")
		}
	}
	const maxShown = 2
	if len(list) > maxShown {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:maxShown], ", "), len(list)-maxShown)
	}
	return strings.Join(list, ", ")
}

// valueTarget renders an object or external metric: an average value per
// pod, marked "(avg)", or a total value.
func valueTarget(t autoscalingv2.MetricTarget, hasStatus bool, current func() autoscalingv2.MetricValueStatus) string {
	cur := "<unknown>"
	if t.AverageValue != nil {
		if hasStatus && current().AverageValue != nil {
			cur = current().AverageValue.String()
		}
		return fmt.Sprintf("%s/%s (avg)", cur, t.AverageValue.String())
	}
	if hasStatus && current().Value != nil {
		cur = current().Value.String()
	}
	return cur + "/" + t.Value.String()
}

// utilizationTarget renders a resource metric: a raw average value or a
// utilization percentage.
func utilizationTarget(t autoscalingv2.MetricTarget, hasStatus bool, current func() autoscalingv2.MetricValueStatus) string {
	cur := "<unknown>"
	if t.AverageValue != nil {
		if hasStatus && current().AverageValue != nil {
			cur = current().AverageValue.String()
		}
		return cur + "/" + t.AverageValue.String()
	}
	if hasStatus && current().AverageUtilization != nil {
		cur = fmt.Sprintf("%d%%", *current().AverageUtilization)
	}
	target := "<auto>"
	if t.AverageUtilization != nil {
		target = fmt.Sprintf("%d%%", *t.AverageUtilization)
	}
	return cur + "/" + target
}
