package resources

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PersistentVolumeClaims is core/v1 persistentvolumeclaims: a pod's request
// for storage, bound to a volume by controllers/volumebinding (docs/storage.md).
func PersistentVolumeClaims() *Resource {
	return &Resource{
		GVR:            corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims"),
		Kind:           "PersistentVolumeClaim",
		SingularName:   "persistentvolumeclaim",
		Namespaced:     true,
		ShortNames:     []string{"pvc"},
		New:            func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		NewList:        func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
		HasStatus:      true,
		Default:        typed(defaultPersistentVolumeClaim),
		Validate:       typedValidate(validatePersistentVolumeClaim),
		ValidateUpdate: typedValidateUpdate(validatePersistentVolumeClaimUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Status", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"]},
			{Name: "Volume", Type: "string", Description: corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"]},
			{Name: "Capacity", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"]},
			{Name: "Access Modes", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"]},
			{Name: "StorageClass", Type: "string", Description: "StorageClass of the pvc"},
			{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pvc"},
			ageColumn,
			{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"]},
		},
		Row:    typedRowNow(persistentVolumeClaimRow),
		Fields: typedFields(func(c *corev1.PersistentVolumeClaim) fields.Set { return fields.Set{"name": c.Name} }),
	}
}

func defaultPersistentVolumeClaim(c *corev1.PersistentVolumeClaim) {
	if c.Status.Phase == "" {
		c.Status.Phase = corev1.ClaimPending
	}
	if c.Spec.VolumeMode == nil {
		c.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
	}
}

func validatePersistentVolumeClaim(c *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, true, nameIsDNSSubdomain)
	s, p := &c.Spec, field.NewPath("spec")
	errs = append(errs, validateAccessModes(s.AccessModes, p.Child("accessModes"), "at least 1 access mode is required")...)
	if s.Selector != nil {
		errs = append(errs, validateLabelSelector(s.Selector, p.Child("selector"))...)
	}
	// The path is spec.resources[storage], as Kubernetes reports it.
	rp := p.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := s.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(rp, ""))
	} else {
		errs = append(errs, validatePositiveQuantity(q, rp)...)
	}
	if sc := s.StorageClassName; sc != nil && *sc != "" {
		errs = append(errs, messages(p.Child("storageClassName"), *sc, nameIsDNSSubdomain(*sc, false))...)
	}
	if m := s.VolumeMode; m != nil && !oneOf(*m, volumeModes...) {
		errs = append(errs, field.NotSupported(p.Child("volumeMode"), *m, volumeModes))
	}
	if ds := s.DataSource; ds != nil {
		dp := p.Child("dataSource")
		if ds.Name == "" {
			errs = append(errs, field.Required(dp.Child("name"), ""))
		}
		if ds.Kind == "" {
			errs = append(errs, field.Required(dp.Child("kind"), ""))
		}
		if (ds.APIGroup == nil || *ds.APIGroup == "") && ds.Kind != "" && ds.Kind != "PersistentVolumeClaim" {
			errs = append(errs, field.Invalid(dp, ds.Kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
		}
	}
	return errs
}

// validatePersistentVolumeClaimUpdate: a claim's spec is fixed, except that
// volumeName may be set once (binding), storageClassName may be set once
// where it was nil, and a bound claim's storage request may grow (or
// shrink back to above what was actually provisioned, to recover from a
// failed expansion).
func validatePersistentVolumeClaimUpdate(c, old *corev1.PersistentVolumeClaim) field.ErrorList {
	var errs field.ErrorList
	newSpec, oldSpec := c.Spec.DeepCopy(), old.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	if a, oa := c.Annotations[corev1.BetaStorageClassAnnotation], old.Annotations[corev1.BetaStorageClassAnnotation]; a != oa {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations", corev1.BetaStorageClassAnnotation), a, "field is immutable"))
	}
	if _, annotated := old.Annotations[corev1.BetaStorageClassAnnotation]; !annotated && oldSpec.StorageClassName == nil && newSpec.StorageClassName != nil {
		newSpec.StorageClassName = nil
	}
	// The stored status decides: resizing applies to bound claims only.
	if c.Status.Phase == corev1.ClaimBound && newSpec.Resources.Requests != nil {
		newSpec.Resources.Requests[corev1.ResourceStorage] = old.Spec.Resources.Requests[corev1.ResourceStorage]
	}
	if !apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))
	}
	newSize, oldSize := c.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if statusSize := old.Status.Capacity[corev1.ResourceStorage]; newSize.Cmp(oldSize) < 0 && newSize.Cmp(statusSize) <= 0 {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
	}
	return append(errs, apivalidation.ValidateImmutableField(c.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
}

func persistentVolumeClaimRow(c *corev1.PersistentVolumeClaim, now time.Time) []any {
	phase := string(c.Status.Phase)
	if c.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if c.Spec.VolumeName != "" {
		modes = accessModesString(c.Status.AccessModes)
		q := c.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
	}
	class := deref(c.Spec.StorageClassName, "")
	if a, ok := c.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = a
	}
	mode := "<unset>"
	if c.Spec.VolumeMode != nil {
		mode = string(*c.Spec.VolumeMode)
	}
	return []any{
		c.Name, phase, c.Spec.VolumeName, capacity, modes, class,
		deref(c.Spec.VolumeAttributesClassName, "<unset>"), age(c.CreationTimestamp, now), mode,
	}
}
