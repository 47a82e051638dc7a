package resources

import (
	"strings"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CSIDrivers is storage.k8s.io/v1 csidrivers: what a CSI driver installed
// by a chart declares about itself. Stored and validated only.
func CSIDrivers() *Resource {
	return &Resource{
		GVR:            storagev1.SchemeGroupVersion.WithResource("csidrivers"),
		Kind:           "CSIDriver",
		SingularName:   "csidriver",
		New:            func() runtime.Object { return &storagev1.CSIDriver{} },
		NewList:        func() runtime.Object { return &storagev1.CSIDriverList{} },
		Default:        typed(defaultCSIDriver),
		Validate:       typedValidate(validateCSIDriver),
		ValidateUpdate: typedValidateUpdate(validateCSIDriverUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "AttachRequired", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"]},
			{Name: "PodInfoOnMount", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"]},
			{Name: "StorageCapacity", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["storageCapacity"]},
			{Name: "TokenRequests", Type: "string", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["tokenRequests"]},
			{Name: "RequiresRepublish", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["requiresRepublish"]},
			{Name: "Modes", Type: "string", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"]},
			ageColumn,
		},
		Row: typedRowNow(csiDriverRow),
	}
}

var (
	fsGroupPolicies      = []storagev1.FSGroupPolicy{storagev1.FileFSGroupPolicy, storagev1.NoneFSGroupPolicy, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy}
	volumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral, storagev1.VolumeLifecyclePersistent}
)

func defaultCSIDriver(d *storagev1.CSIDriver) {
	s := &d.Spec
	if s.AttachRequired == nil {
		s.AttachRequired = ptrTo(true)
	}
	if s.PodInfoOnMount == nil {
		s.PodInfoOnMount = ptrTo(false)
	}
	if s.StorageCapacity == nil {
		s.StorageCapacity = ptrTo(false)
	}
	if s.FSGroupPolicy == nil {
		s.FSGroupPolicy = ptrTo(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
	}
	if len(s.VolumeLifecycleModes) == 0 {
		s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
	}
	if s.RequiresRepublish == nil {
		s.RequiresRepublish = ptrTo(false)
	}
}

// csiDriverName is the name rule of CSI drivers: at most 63 characters, a
// DNS subdomain in any case.
func csiDriverName(name string, _ bool) []string {
	msgs := validation.IsDNS1123Subdomain(strings.ToLower(name))
	if len(name) > 63 {
		msgs = append(msgs, validation.MaxLenError(63))
	}
	return msgs
}

func validateCSIDriver(d *storagev1.CSIDriver) field.ErrorList {
	errs := validateMeta(&d.ObjectMeta, false, csiDriverName)
	s, p := &d.Spec, field.NewPath("spec")
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"attachRequired", s.AttachRequired != nil}, {"podInfoOnMount", s.PodInfoOnMount != nil},
		{"storageCapacity", s.StorageCapacity != nil}, {"requiresRepublish", s.RequiresRepublish != nil},
	} {
		if !f.set {
			errs = append(errs, field.Required(p.Child(f.name), ""))
		}
	}
	if fp := s.FSGroupPolicy; fp != nil && !oneOf(*fp, fsGroupPolicies...) {
		errs = append(errs, field.NotSupported(p.Child("fsGroupPolicy"), *fp, fsGroupPolicies))
	}
	for i, m := range s.VolumeLifecycleModes {
		if !oneOf(m, volumeLifecycleModes...) {
			errs = append(errs, field.NotSupported(p.Child("volumeLifecycleModes").Index(i), m, volumeLifecycleModes))
		}
	}
	seen := map[string]bool{}
	for i, t := range s.TokenRequests {
		ap := p.Child("tokenRequests").Index(i).Child("audience")
		if seen[t.Audience] {
			errs = append(errs, field.Duplicate(ap, t.Audience))
		}
		seen[t.Audience] = true
		if es := t.ExpirationSeconds; es != nil && (*es < 600 || *es > 1<<32) {
			errs = append(errs, field.Invalid(p.Child("tokenRequests").Index(i).Child("expirationSeconds"), *es, "may not be less than 10 minutes or more than 2^32 seconds"))
		}
	}
	return errs
}

func validateCSIDriverUpdate(d, old *storagev1.CSIDriver) field.ErrorList {
	p := field.NewPath("spec")
	errs := apivalidation.ValidateImmutableField(d.Spec.AttachRequired, old.Spec.AttachRequired, p.Child("attachRequired"))
	return append(errs, apivalidation.ValidateImmutableField(d.Spec.VolumeLifecycleModes, old.Spec.VolumeLifecycleModes, p.Child("volumeLifecycleModes"))...)
}

func csiDriverRow(d *storagev1.CSIDriver, now time.Time) []any {
	s := &d.Spec
	modes := make([]string, 0, len(s.VolumeLifecycleModes))
	for _, m := range s.VolumeLifecycleModes {
		modes = append(modes, string(m))
	}
	tokens := "<unset>"
	if s.TokenRequests != nil {
		var auds []string
		for _, t := range s.TokenRequests {
			auds = append(auds, t.Audience)
		}
		tokens = strings.Join(auds, ",")
	}
	return []any{
		d.Name, deref(s.AttachRequired, true), deref(s.PodInfoOnMount, false), deref(s.StorageCapacity, false),
		tokens, deref(s.RequiresRepublish, false), orNone(strings.Join(modes, ",")), age(d.CreationTimestamp, now),
	}
}
