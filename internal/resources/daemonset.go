package resources

import (
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DaemonSetTemplateGenerationAnnotation carries a DaemonSet's template
// generation in apps/v1, as upstream's conversion keeps its internal
// spec.templateGeneration: 1 on create, one more on each template change.
// The controller labels pods with it (pod-template-generation).
const DaemonSetTemplateGenerationAnnotation = "deprecated.daemonset.template.generation"

// DaemonSets is apps/v1 daemonsets.
func DaemonSets() *Resource {
	return &Resource{
		GVR:              appsv1.SchemeGroupVersion.WithResource("daemonsets"),
		Kind:             "DaemonSet",
		SingularName:     "daemonset",
		Namespaced:       true,
		ShortNames:       []string{"ds"},
		Categories:       []string{"all"},
		New:              func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList:          func() runtime.Object { return &appsv1.DaemonSetList{} },
		HasStatus:        true,
		Default:          typed(defaultDaemonSet),
		PrepareForCreate: typed(func(ds *appsv1.DaemonSet) { setTemplateGeneration(ds, 1) }),
		PrepareForUpdate: typedPrepareUpdate(prepareDaemonSetUpdate),
		Validate:         typedValidate(validateDaemonSet),
		ValidateUpdate:   typedValidateUpdate(validateDaemonSetUpdate),
		ValidateStatus:   typedValidateUpdate(validateDaemonSetStatusUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Desired", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]},
			{Name: "Current", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]},
			{Name: "Ready", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]},
			{Name: "Up-to-date", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]},
			{Name: "Available", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]},
			{Name: "Node Selector", Type: "string", Description: "The node selector of the pod template"},
			ageColumn,
			{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."},
			{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."},
			{Name: "Selector", Type: "string", Priority: 1, Description: appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"]},
		},
		Row: typedRowNow(daemonSetRow),
	}
}

// defaultDaemonSet is upstream's SetDefaults_DaemonSet.
func defaultDaemonSet(ds *appsv1.DaemonSet) {
	s := &ds.Spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = ptrTo(intstr.FromInt32(1))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = ptrTo(intstr.FromInt32(0))
		}
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	defaultPodTemplate(&ds.Spec.Template)
}

// TemplateGeneration returns a DaemonSet's template generation (0 when
// its annotation is missing or malformed).
func TemplateGeneration(ds *appsv1.DaemonSet) int64 {
	n, err := strconv.ParseInt(ds.Annotations[DaemonSetTemplateGenerationAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func setTemplateGeneration(ds *appsv1.DaemonSet, n int64) {
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[DaemonSetTemplateGenerationAnnotation] = strconv.FormatInt(n, 10)
}

// prepareDaemonSetUpdate keeps the template generation the server owns:
// the stored one, plus one when the template changed (what upstream's
// strategy does with spec.templateGeneration). A client that dropped or
// edited the annotation does not move it.
func prepareDaemonSetUpdate(ds, old *appsv1.DaemonSet) {
	n := max(TemplateGeneration(old), 1)
	if !apiequality.Semantic.DeepEqual(ds.Spec.Template, old.Spec.Template) {
		n++
	}
	setTemplateGeneration(ds, n)
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	errs := validateMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain)
	p := field.NewPath("spec")
	spec := &ds.Spec
	errs = append(errs, validateSelectorAndTemplate("DaemonSet", spec.Selector, &spec.Template, p)...)
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	return append(errs, validateDaemonSetUpdateStrategy(&spec.UpdateStrategy, p.Child("updateStrategy"))...)
}

var daemonSetStrategyTypes = []appsv1.DaemonSetUpdateStrategyType{appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType}

// validateDaemonSetUpdateStrategy is upstream's ValidateDaemonSetUpdateStrategy
// and ValidateRollingUpdateDaemonSet: exactly one of maxUnavailable and
// maxSurge is non-zero, neither above 100%.
func validateDaemonSetUpdateStrategy(s *appsv1.DaemonSetUpdateStrategy, p *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
		return nil
	case appsv1.RollingUpdateDaemonSetStrategyType:
		rp := p.Child("rollingUpdate")
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(rp, "this should be defaulted and never be nil")}
		}
		ru := s.RollingUpdate
		errs := validateIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))
		errs = append(errs, validateIntOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
		for _, f := range []struct {
			name string
			v    *intstr.IntOrString
		}{{"maxUnavailable", ru.MaxUnavailable}, {"maxSurge", ru.MaxSurge}} {
			if n, ok := percentValue(f.v); ok && n > 100 {
				errs = append(errs, field.Invalid(rp.Child(f.name), f.v, "must not be greater than 100%"))
			}
		}
		unavailable, surge := !intOrPercentIsZero(ru.MaxUnavailable), !intOrPercentIsZero(ru.MaxSurge)
		switch {
		case unavailable && surge:
			errs = append(errs, field.Invalid(rp.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
		case !unavailable && !surge:
			errs = append(errs, field.Required(rp.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
		return errs
	case "":
		return field.ErrorList{field.Required(p.Child("type"), "")}
	default:
		return field.ErrorList{field.NotSupported(p.Child("type"), s.Type, daemonSetStrategyTypes)}
	}
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	// Pods the old selector owned would be orphaned, or adopted by surprise.
	return apivalidation.ValidateImmutableField(ds.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))
}

func validateDaemonSetStatusUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status")
	s := &ds.Status
	errs = append(errs, validateNonnegative(s.ObservedGeneration, p.Child("observedGeneration"))...)
	for _, c := range []struct {
		name string
		v    int32
	}{
		{"currentNumberScheduled", s.CurrentNumberScheduled}, {"numberMisscheduled", s.NumberMisscheduled},
		{"desiredNumberScheduled", s.DesiredNumberScheduled}, {"numberReady", s.NumberReady},
		{"updatedNumberScheduled", s.UpdatedNumberScheduled}, {"numberAvailable", s.NumberAvailable},
		{"numberUnavailable", s.NumberUnavailable},
	} {
		errs = append(errs, validateNonnegative(int64(c.v), p.Child(c.name))...)
	}
	if s.CollisionCount != nil {
		errs = append(errs, validateNonnegative(int64(*s.CollisionCount), p.Child("collisionCount"))...)
	}
	return errs
}

func daemonSetRow(ds *appsv1.DaemonSet, now time.Time) []any {
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	s := &ds.Status
	return []any{
		ds.Name,
		int64(s.DesiredNumberScheduled),
		int64(s.CurrentNumberScheduled),
		int64(s.NumberReady),
		int64(s.UpdatedNumberScheduled),
		int64(s.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		age(ds.CreationTimestamp, now),
		names, images, selectorString(ds.Spec.Selector),
	}
}
