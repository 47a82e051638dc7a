package resources

import (
	"path"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PersistentVolumes is core/v1 persistentvolumes: cluster-scoped volumes
// that claims bind to (controllers/volumebinding binds them; docs/storage.md).
func PersistentVolumes() *Resource {
	return &Resource{
		GVR:              corev1.SchemeGroupVersion.WithResource("persistentvolumes"),
		Kind:             "PersistentVolume",
		SingularName:     "persistentvolume",
		ShortNames:       []string{"pv"},
		New:              func() runtime.Object { return &corev1.PersistentVolume{} },
		NewList:          func() runtime.Object { return &corev1.PersistentVolumeList{} },
		HasStatus:        true,
		Default:          typed(defaultPersistentVolume),
		PrepareForCreate: typed(func(pv *corev1.PersistentVolume) { pv.Status.LastPhaseTransitionTime = ptrTo(metav1.Now()) }),
		Validate:         typedValidate(validatePersistentVolume),
		ValidateUpdate:   typedValidateUpdate(validatePersistentVolumeUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Capacity", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]},
			{Name: "Access Modes", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]},
			{Name: "Reclaim Policy", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]},
			{Name: "Status", Type: "string", Description: corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]},
			{Name: "Claim", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]},
			{Name: "StorageClass", Type: "string", Description: "StorageClass of the pv"},
			{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pv"},
			{Name: "Reason", Type: "string", Description: corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]},
			ageColumn,
			{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]},
		},
		Row: typedRowNow(persistentVolumeRow),
		// "name" is a Kubernetes bug kept for compatibility: clients use it.
		Fields: typedFields(func(pv *corev1.PersistentVolume) fields.Set { return fields.Set{"name": pv.Name} }),
	}
}

var (
	accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod}
	// Recycle is deprecated but still accepted on volumes (not on classes).
	pvReclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain}
	volumeModes       = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}
)

func defaultPersistentVolume(pv *corev1.PersistentVolume) {
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
	}
	if h := pv.Spec.HostPath; h != nil && h.Type == nil {
		h.Type = ptrTo(corev1.HostPathUnset)
	}
}

func validatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	errs := validateMeta(&pv.ObjectMeta, false, nameIsDNSSubdomain)
	s, p := &pv.Spec, field.NewPath("spec")
	errs = append(errs, validateAccessModes(s.AccessModes, p.Child("accessModes"), "")...)
	cp := p.Child("capacity")
	if len(s.Capacity) == 0 {
		errs = append(errs, field.Required(cp, ""))
	}
	if _, ok := s.Capacity[corev1.ResourceStorage]; !ok || len(s.Capacity) > 1 {
		errs = append(errs, field.NotSupported(cp, s.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for name, q := range s.Capacity {
		errs = append(errs, validatePositiveQuantity(q, cp.Key(string(name)))...)
	}
	if s.StorageClassName != "" {
		errs = append(errs, messages(p.Child("storageClassName"), s.StorageClassName, nameIsDNSSubdomain(s.StorageClassName, false))...)
	}
	if m := s.VolumeMode; m != nil && !oneOf(*m, volumeModes...) {
		errs = append(errs, field.NotSupported(p.Child("volumeMode"), *m, volumeModes))
	}
	if rp := s.PersistentVolumeReclaimPolicy; rp != "" && !oneOf(rp, pvReclaimPolicies...) {
		errs = append(errs, field.NotSupported(p.Child("persistentVolumeReclaimPolicy"), rp, pvReclaimPolicies))
	}
	if na := s.NodeAffinity; na != nil {
		np := p.Child("nodeAffinity", "required")
		if na.Required == nil {
			errs = append(errs, field.Required(np, "must specify required node constraints"))
		} else {
			if len(na.Required.NodeSelectorTerms) == 0 {
				errs = append(errs, field.Required(np.Child("nodeSelectorTerms"), "must have at least one node selector term"))
			}
			for i := range na.Required.NodeSelectorTerms {
				errs = append(errs, validateNodeSelectorTerm(&na.Required.NodeSelectorTerms[i], np.Child("nodeSelectorTerms").Index(i))...)
			}
		}
	}
	errs = append(errs, validatePersistentVolumeSource(&s.PersistentVolumeSource, p)...)
	if s.Local != nil && (s.NodeAffinity == nil || s.NodeAffinity.Required == nil) {
		errs = append(errs, field.Required(p.Child("nodeAffinity"), "Local volume requires node affinity"))
	}
	if s.HostPath != nil && path.Clean(s.HostPath.Path) == "/" && s.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRecycle {
		errs = append(errs, field.Forbidden(p.Child("persistentVolumeReclaimPolicy"), "may not be 'recycle' for a hostPath mount of '/'"))
	}
	if cr := s.ClaimRef; cr != nil && cr.Name == "" {
		errs = append(errs, field.Required(p.Child("claimRef", "name"), ""))
	}
	return errs
}

// validateAccessModes: at least one, known, ReadWriteOncePod alone.
func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, p *field.Path, requiredMsg string) field.ErrorList {
	var errs field.ErrorList
	if len(modes) == 0 {
		errs = append(errs, field.Required(p, requiredMsg))
	}
	for _, m := range modes {
		if !oneOf(m, accessModes...) {
			errs = append(errs, field.NotSupported(p, m, accessModes))
		}
	}
	if len(modes) > 1 && oneOf(corev1.ReadWriteOncePod, modes...) {
		errs = append(errs, field.Forbidden(p, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func validatePositiveQuantity(q resource.Quantity, p *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must be greater than zero")}
	}
	return nil
}

// validatePersistentVolumeSource checks that exactly one volume type is
// set, and the essentials of the ones a small cluster uses.
func validatePersistentVolumeSource(src *corev1.PersistentVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	v := reflect.ValueOf(src).Elem()
	n := 0
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			continue
		}
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if n++; n > 1 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 volume type"))
		}
	}
	if n == 0 {
		return append(errs, field.Required(p, "must specify a volume type"))
	}
	noDotDot := func(v string, p *field.Path) field.ErrorList {
		switch {
		case v == "":
			return field.ErrorList{field.Required(p, "")}
		case hasDotDot(v):
			return field.ErrorList{field.Invalid(p, v, "must not contain '..'")}
		}
		return nil
	}
	if h := src.HostPath; h != nil {
		hp := p.Child("hostPath")
		errs = append(errs, noDotDot(h.Path, hp.Child("path"))...)
		if t := h.Type; t != nil && !oneOf(*t, hostPathTypes...) {
			errs = append(errs, field.NotSupported(hp.Child("type"), *t, hostPathTypes))
		}
	}
	if l := src.Local; l != nil {
		errs = append(errs, noDotDot(l.Path, p.Child("local", "path"))...)
	}
	if nfs := src.NFS; nfs != nil {
		np := p.Child("nfs")
		if nfs.Server == "" {
			errs = append(errs, field.Required(np.Child("server"), ""))
		}
		switch {
		case nfs.Path == "":
			errs = append(errs, field.Required(np.Child("path"), ""))
		case !path.IsAbs(nfs.Path):
			errs = append(errs, field.Invalid(np.Child("path"), nfs.Path, "must be an absolute path"))
		}
	}
	if csi := src.CSI; csi != nil {
		cp := p.Child("csi")
		if csi.Driver == "" {
			errs = append(errs, field.Required(cp.Child("driver"), ""))
		} else {
			errs = append(errs, messages(cp.Child("driver"), csi.Driver, csiDriverName(csi.Driver, false))...)
		}
		if csi.VolumeHandle == "" {
			errs = append(errs, field.Required(cp.Child("volumeHandle"), ""))
		}
	}
	return errs
}

// validatePersistentVolumeUpdate: the volume source and mode are fixed;
// node affinity may be set once. The paths are the ones Kubernetes reports.
func validatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	var errs field.ErrorList
	newSrc := pv.Spec.PersistentVolumeSource
	// A CSI volume may gain the secret for controller expansion.
	if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && newSrc.CSI != nil && newSrc.CSI.ControllerExpandSecretRef != nil {
		newSrc = *newSrc.DeepCopy()
		newSrc.CSI.ControllerExpandSecretRef = nil
	}
	if !apiequality.Semantic.DeepEqual(newSrc, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	errs = append(errs, apivalidation.ValidateImmutableField(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.NodeAffinity != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(pv.Spec.NodeAffinity, old.Spec.NodeAffinity, field.NewPath("nodeAffinity"))...)
	}
	return errs
}

// accessModesString is kubectl's short form of access modes (RWO,ROX,...),
// in a fixed order.
func accessModesString(modes []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{{corev1.ReadWriteOnce, "RWO"}, {corev1.ReadOnlyMany, "ROX"}, {corev1.ReadWriteMany, "RWX"}, {corev1.ReadWriteOncePod, "RWOP"}} {
		if oneOf(m.mode, modes...) {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

func persistentVolumeRow(pv *corev1.PersistentVolume, now time.Time) []any {
	claim := ""
	if cr := pv.Spec.ClaimRef; cr != nil {
		claim = cr.Namespace + "/" + cr.Name
	}
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	class := pv.Spec.StorageClassName
	if c, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = c
	}
	size := pv.Spec.Capacity[corev1.ResourceStorage]
	mode := "<unset>"
	if pv.Spec.VolumeMode != nil {
		mode = string(*pv.Spec.VolumeMode)
	}
	return []any{
		pv.Name, size.String(), accessModesString(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy),
		phase, claim, class, deref(pv.Spec.VolumeAttributesClassName, "<unset>"), pv.Status.Reason,
		age(pv.CreationTimestamp, now), mode,
	}
}
