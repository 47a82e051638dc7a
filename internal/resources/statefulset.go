package resources

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// StatefulSets is apps/v1 statefulsets: pods with stable names, stable
// DNS through a headless service and their own claims.
func StatefulSets() *Resource {
	return &Resource{
		GVR:          appsv1.SchemeGroupVersion.WithResource("statefulsets"),
		Kind:         "StatefulSet",
		SingularName: "statefulset",
		Namespaced:   true,
		ShortNames:   []string{"sts"},
		Categories:   []string{"all"},
		New:          func() runtime.Object { return &appsv1.StatefulSet{} },
		NewList:      func() runtime.Object { return &appsv1.StatefulSetList{} },
		HasStatus:    true,
		Scale: &ScaleAccessor{
			Get: func(o runtime.Object) (int32, int32, string) {
				s := o.(*appsv1.StatefulSet)
				return deref(s.Spec.Replicas, 1), s.Status.Replicas, selectorString(s.Spec.Selector)
			},
			SetReplicas: func(o runtime.Object, n int32) { o.(*appsv1.StatefulSet).Spec.Replicas = &n },
		},
		Default:        typed(defaultStatefulSet),
		Validate:       typedValidate(validateStatefulSet),
		ValidateUpdate: typedValidateUpdate(validateStatefulSetUpdate),
		ValidateStatus: typedValidateUpdate(validateStatefulSetStatusUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
			ageColumn,
			{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."},
			{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."},
		},
		Row: typedRowNow(statefulSetRow),
	}
}

// defaultStatefulSet is upstream's SetDefaults_StatefulSet (with the
// MaxUnavailableStatefulSet gate off: maxUnavailable stays unset unless
// given) plus the claim templates' own defaults.
func defaultStatefulSet(s *appsv1.StatefulSet) {
	spec := &s.Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	u := &spec.UpdateStrategy
	if u.Type == "" {
		u.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if u.RollingUpdate == nil {
			u.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if u.Type == appsv1.RollingUpdateStatefulSetStrategyType && u.RollingUpdate != nil && u.RollingUpdate.Partition == nil {
		u.RollingUpdate.Partition = ptrTo(int32(0))
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	rp := spec.PersistentVolumeClaimRetentionPolicy
	if rp.WhenDeleted == "" {
		rp.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if rp.WhenScaled == "" {
		rp.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = ptrTo(int32(1))
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	for i := range spec.VolumeClaimTemplates {
		defaultPersistentVolumeClaim(&spec.VolumeClaimTemplates[i])
	}
	defaultPodTemplate(&spec.Template)
}

var retentionPolicyTypes = []appsv1.PersistentVolumeClaimRetentionPolicyType{
	appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
}

func validateStatefulSet(s *appsv1.StatefulSet) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	return append(errs, validateStatefulSetSpec(&s.Spec, field.NewPath("spec"))...)
}

// validateStatefulSetSpec follows upstream's ValidateStatefulSetSpec. Where
// upstream skips the template's pod spec (its volume mounts may name claim
// templates), this validates it with the claims as the volumes they become.
func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.ServiceName != "" {
		errs = append(errs, validateDNS1123Label(spec.ServiceName, p.Child("serviceName"))...)
	}
	switch spec.PodManagementPolicy {
	case "":
		errs = append(errs, field.Required(p.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		errs = append(errs, field.Invalid(p.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	errs = append(errs, validateStatefulSetUpdateStrategy(&spec.UpdateStrategy, p.Child("updateStrategy"))...)
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		pp := p.Child("persistentVolumeClaimRetentionPolicy")
		if !oneOf(rp.WhenDeleted, retentionPolicyTypes...) {
			errs = append(errs, field.NotSupported(pp.Child("whenDeleted"), rp.WhenDeleted, retentionPolicyTypes))
		}
		if !oneOf(rp.WhenScaled, retentionPolicyTypes...) {
			errs = append(errs, field.NotSupported(pp.Child("whenScaled"), rp.WhenScaled, retentionPolicyTypes))
		}
	}
	errs = append(errs, validateNonnegative(int64(deref(spec.Replicas, 1)), p.Child("replicas"))...)
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	if spec.Ordinals != nil {
		errs = append(errs, validateNonnegative(int64(spec.Ordinals.Start), p.Child("ordinals.start"))...)
	}
	errs = append(errs, validateVolumeClaimTemplates(spec.VolumeClaimTemplates, p.Child("volumeClaimTemplates"))...)

	// The pod spec as the controller writes it: each claim template is a
	// volume (replacing a template volume of the same name).
	t := spec.Template.DeepCopy()
	claims := make(map[string]bool, len(spec.VolumeClaimTemplates))
	for _, c := range spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	vols := t.Spec.Volumes[:0]
	for _, v := range t.Spec.Volumes {
		if !claims[v.Name] {
			vols = append(vols, v)
		}
	}
	for _, c := range spec.VolumeClaimTemplates {
		if c.Name == "" {
			continue
		}
		vols = append(vols, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name},
		}})
	}
	t.Spec.Volumes = vols
	errs = append(errs, validateSelectorAndTemplate("statefulset", spec.Selector, t, p)...)
	return errs
}

func validateStatefulSetUpdateStrategy(u *appsv1.StatefulSetUpdateStrategy, p *field.Path) field.ErrorList {
	switch u.Type {
	case "":
		return field.ErrorList{field.Required(p, "")}
	case appsv1.OnDeleteStatefulSetStrategyType:
		if u.RollingUpdate != nil {
			return field.ErrorList{field.Invalid(p.Child("rollingUpdate"), u.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType))}
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		ru := u.RollingUpdate
		if ru == nil {
			return nil
		}
		rp := p.Child("rollingUpdate")
		var errs field.ErrorList
		if ru.Partition != nil {
			errs = append(errs, validateNonnegative(int64(*ru.Partition), rp.Child("partition"))...)
		}
		if mu := ru.MaxUnavailable; mu != nil {
			mp := rp.Child("maxUnavailable")
			errs = append(errs, validateIntOrPercent(mu, mp)...)
			if intOrPercentIsZero(mu) {
				errs = append(errs, field.Invalid(mp, mu, "cannot be 0"))
			}
			if n, ok := percentValue(mu); ok && n > 100 {
				errs = append(errs, field.Invalid(mp, mu, "must not be greater than 100%"))
			}
		}
		return errs
	default:
		return field.ErrorList{field.Invalid(p, u,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType))}
	}
	return nil
}

// validateVolumeClaimTemplates checks each template as the claim it
// stamps out (its name becomes the prefix of the claims' names).
func validateVolumeClaimTemplates(ts []corev1.PersistentVolumeClaim, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := make(map[string]bool, len(ts))
	for i := range ts {
		c := &ts[i]
		ip := p.Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(ip.Child("metadata", "name"), "name or generateName is required"))
		} else {
			errs = append(errs, messages(ip.Child("metadata", "name"), c.Name, nameIsDNSSubdomain(c.Name, false))...)
			if seen[c.Name] {
				errs = append(errs, field.Duplicate(ip.Child("metadata", "name"), c.Name))
			}
			seen[c.Name] = true
		}
		errs = append(errs, validateLabels(c.Labels, ip.Child("metadata", "labels"))...)
		errs = append(errs, apivalidation.ValidateAnnotations(c.Annotations, ip.Child("metadata", "annotations"))...)
		// The spec checks of a claim, reported under this template's path.
		claim := c.DeepCopy()
		claim.Name, claim.Namespace = "x", "x"
		for _, e := range validatePersistentVolumeClaim(claim) {
			if e.Field == "metadata.name" || e.Field == "metadata.namespace" {
				continue
			}
			e.Field = ip.String() + "." + e.Field
			errs = append(errs, e)
		}
	}
	return errs
}

// validateStatefulSetUpdate is upstream's ValidateStatefulSetUpdate: the
// spec is valid, and only replicas, ordinals, template, updateStrategy,
// persistentVolumeClaimRetentionPolicy and minReadySeconds change.
func validateStatefulSetUpdate(s, old *appsv1.StatefulSet) field.ErrorList {
	clone := s.Spec.DeepCopy()
	clone.Replicas = old.Spec.Replicas
	clone.Template = old.Spec.Template
	clone.UpdateStrategy = old.Spec.UpdateStrategy
	clone.MinReadySeconds = old.Spec.MinReadySeconds
	clone.Ordinals = old.Spec.Ordinals
	clone.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !apiequality.Semantic.DeepEqual(clone, &old.Spec) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")}
	}
	return nil
}

func validateStatefulSetStatusUpdate(s, old *appsv1.StatefulSet) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status")
	st := &s.Status
	errs = append(errs, validateNonnegative(st.ObservedGeneration, p.Child("observedGeneration"))...)
	for _, c := range []struct {
		name string
		v    int32
	}{
		{"replicas", st.Replicas}, {"readyReplicas", st.ReadyReplicas}, {"currentReplicas", st.CurrentReplicas},
		{"updatedReplicas", st.UpdatedReplicas}, {"availableReplicas", st.AvailableReplicas},
	} {
		errs = append(errs, validateNonnegative(int64(c.v), p.Child(c.name))...)
	}
	if st.CollisionCount != nil {
		errs = append(errs, validateNonnegative(int64(*st.CollisionCount), p.Child("collisionCount"))...)
		if old.Status.CollisionCount != nil && *st.CollisionCount < *old.Status.CollisionCount {
			errs = append(errs, field.Invalid(p.Child("collisionCount"), *st.CollisionCount, "cannot be decremented"))
		}
	}
	const msg = "cannot be greater than status.replicas"
	for _, c := range []struct {
		name string
		v    int32
	}{{"readyReplicas", st.ReadyReplicas}, {"currentReplicas", st.CurrentReplicas}, {"updatedReplicas", st.UpdatedReplicas}, {"availableReplicas", st.AvailableReplicas}} {
		if c.v > st.Replicas {
			errs = append(errs, field.Invalid(p.Child(c.name), c.v, msg))
		}
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than status.readyReplicas"))
	}
	return errs
}

func statefulSetRow(s *appsv1.StatefulSet, now time.Time) []any {
	names, images := containerCells(s.Spec.Template.Spec.Containers)
	return []any{
		s.Name,
		fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, deref(s.Spec.Replicas, 1)),
		age(s.CreationTimestamp, now),
		names, images,
	}
}
