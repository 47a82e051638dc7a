package resources

import (
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// StorageClasses is storage.k8s.io/v1 storageclasses: cluster-scoped
// classes of dynamically provisioned volumes. Charts name them in their
// claims and often install one.
func StorageClasses() *Resource {
	return &Resource{
		GVR:            storagev1.SchemeGroupVersion.WithResource("storageclasses"),
		Kind:           "StorageClass",
		SingularName:   "storageclass",
		ShortNames:     []string{"sc"},
		New:            func() runtime.Object { return &storagev1.StorageClass{} },
		NewList:        func() runtime.Object { return &storagev1.StorageClassList{} },
		Default:        typed(defaultStorageClass),
		Validate:       typedValidate(validateStorageClass),
		ValidateUpdate: typedValidateUpdate(validateStorageClassUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Provisioner", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["provisioner"]},
			{Name: "ReclaimPolicy", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]},
			{Name: "VolumeBindingMode", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]},
			{Name: "AllowVolumeExpansion", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]},
			ageColumn,
		},
		Row: typedRowNow(storageClassRow),
	}
}

// Limits of provisioner parameters (pkg/apis/storage/validation).
const (
	maxProvisionerParameters    = 512
	maxProvisionerParameterSize = 256 << 10
)

// The annotations that make a class the default for claims without one.
const (
	isDefaultStorageClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaIsDefaultStorageClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

var (
	storageClassReclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}
	volumeBindingModes          = []storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}
)

func defaultStorageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		sc.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimDelete)
	}
	if sc.VolumeBindingMode == nil {
		sc.VolumeBindingMode = ptrTo(storagev1.VolumeBindingImmediate)
	}
}

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	errs := validateMeta(&sc.ObjectMeta, false, nameIsDNSSubdomain)
	pp := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(pp, ""))
	} else {
		errs = append(errs, validateQualifiedName(strings.ToLower(sc.Provisioner), pp)...)
	}
	errs = append(errs, validateProvisionerParameters(sc.Parameters, field.NewPath("parameters"))...)
	if rp := sc.ReclaimPolicy; rp != nil && *rp != "" && !oneOf(*rp, storageClassReclaimPolicies...) {
		errs = append(errs, field.NotSupported(field.NewPath("reclaimPolicy"), *rp, storageClassReclaimPolicies))
	}
	switch m := sc.VolumeBindingMode; {
	case m == nil:
		errs = append(errs, field.Required(field.NewPath("volumeBindingMode"), ""))
	case !oneOf(*m, volumeBindingModes...):
		errs = append(errs, field.NotSupported(field.NewPath("volumeBindingMode"), *m, volumeBindingModes))
	}
	for i, term := range sc.AllowedTopologies {
		tp := field.NewPath("allowedTopologies").Index(i).Child("matchLabelExpressions")
		if len(term.MatchLabelExpressions) == 0 {
			errs = append(errs, field.Required(tp, "must have at least one label expression"))
		}
		for j, e := range term.MatchLabelExpressions {
			ep := tp.Index(j)
			errs = append(errs, validateLabelName(e.Key, ep.Child("key"))...)
			if len(e.Values) == 0 {
				errs = append(errs, field.Required(ep.Child("values"), "must specify as least one value"))
			}
			seen := map[string]bool{}
			for k, v := range e.Values {
				if seen[v] {
					errs = append(errs, field.Duplicate(ep.Child("values").Index(k), v))
				}
				seen[v] = true
			}
		}
	}
	return errs
}

func validateProvisionerParameters(params map[string]string, p *field.Path) field.ErrorList {
	if len(params) > maxProvisionerParameters {
		return field.ErrorList{field.TooLong(p, "Provisioner Parameters exceeded max allowed", maxProvisionerParameters)}
	}
	var errs field.ErrorList
	size := 0
	for k, v := range params {
		if k == "" {
			errs = append(errs, field.Invalid(p, k, "field can not be empty."))
		}
		size += len(k) + len(v)
	}
	if size > maxProvisionerParameterSize {
		errs = append(errs, field.TooLong(p, "", maxProvisionerParameterSize))
	}
	return errs
}

// validateStorageClassUpdate: what provisioned volumes were made with may
// not change under them.
func validateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	if !reflect.DeepEqual(sc.Parameters, old.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != old.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if deref(sc.ReclaimPolicy, "") != deref(old.ReclaimPolicy, "") {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	return append(errs, apivalidation.ValidateImmutableField(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
}

func isDefaultStorageClass(m metav1.ObjectMeta) bool {
	return m.Annotations[isDefaultStorageClassAnnotation] == "true" || m.Annotations[betaIsDefaultStorageClassAnnotation] == "true"
}

func storageClassRow(sc *storagev1.StorageClass, now time.Time) []any {
	name := sc.Name
	if isDefaultStorageClass(sc.ObjectMeta) {
		name += " (default)"
	}
	return []any{
		name, sc.Provisioner,
		string(deref(sc.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete)),
		string(deref(sc.VolumeBindingMode, storagev1.VolumeBindingImmediate)),
		deref(sc.AllowVolumeExpansion, false),
		age(sc.CreationTimestamp, now),
	}
}

// DefaultStorageClass is the class a claim without one gets, as
// Kubernetes chooses it (DefaultStorageClass admission, and the
// PersistentVolume controller for claims made before any default): of the
// classes annotated default, the newest, then by name; nil if none is.
func DefaultStorageClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, sc := range classes {
		if !isDefaultStorageClass(sc.ObjectMeta) {
			continue
		}
		if best == nil {
			best = sc
			continue
		}
		t, bt := sc.CreationTimestamp.UnixNano(), best.CreationTimestamp.UnixNano()
		if t > bt || (t == bt && sc.Name < best.Name) {
			best = sc
		}
	}
	return best
}
