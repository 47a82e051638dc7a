package resources

import (
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// VolumeAttachments is storage.k8s.io/v1 volumeattachments: a CSI volume
// to attach to a node. Stored and validated; no attacher runs yet.
func VolumeAttachments() *Resource {
	return &Resource{
		GVR:          storagev1.SchemeGroupVersion.WithResource("volumeattachments"),
		Kind:         "VolumeAttachment",
		SingularName: "volumeattachment",
		New:          func() runtime.Object { return &storagev1.VolumeAttachment{} },
		NewList:      func() runtime.Object { return &storagev1.VolumeAttachmentList{} },
		HasStatus:    true,
		Validate:     typedValidate(validateVolumeAttachment),
		ValidateUpdate: typedValidateUpdate(func(va, old *storagev1.VolumeAttachment) field.ErrorList {
			if !apiequality.Semantic.DeepEqual(va.Spec, old.Spec) {
				return field.ErrorList{field.Invalid(field.NewPath("spec"), va.Spec, "field is immutable")}
			}
			return nil
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Attacher", Type: "string", Format: "name", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"]},
			{Name: "PV", Type: "string", Description: storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"]},
			{Name: "Node", Type: "string", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"]},
			{Name: "Attached", Type: "boolean", Description: storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]},
			ageColumn,
		},
		Row: typedRowNow(func(va *storagev1.VolumeAttachment, now time.Time) []any {
			return []any{va.Name, va.Spec.Attacher, deref(va.Spec.Source.PersistentVolumeName, ""), va.Spec.NodeName, va.Status.Attached, age(va.CreationTimestamp, now)}
		}),
	}
}

// maxVolumeErrorMessageSize bounds attachError and detachError messages.
const maxVolumeErrorMessageSize = 1024

func validateVolumeAttachment(va *storagev1.VolumeAttachment) field.ErrorList {
	errs := validateMeta(&va.ObjectMeta, false, nameIsDNSSubdomain)
	p := field.NewPath("spec")
	if va.Spec.Attacher == "" {
		errs = append(errs, field.Required(p.Child("attacher"), ""))
	}
	src, sp := &va.Spec.Source, p.Child("source")
	const exactlyOne = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"
	switch {
	case src.InlineVolumeSpec == nil && src.PersistentVolumeName == nil:
		errs = append(errs, field.Required(sp, exactlyOne))
	case src.InlineVolumeSpec != nil && src.PersistentVolumeName != nil:
		errs = append(errs, field.Forbidden(sp, exactlyOne))
	case src.PersistentVolumeName != nil && *src.PersistentVolumeName == "":
		errs = append(errs, field.Required(sp.Child("persistentVolumeName"), "must specify non empty persistentVolumeName"))
	case src.InlineVolumeSpec != nil:
		errs = append(errs, validatePersistentVolumeSource(&src.InlineVolumeSpec.PersistentVolumeSource, sp.Child("inlineVolumeSpec"))...)
	}
	errs = append(errs, messages(p.Child("nodeName"), va.Spec.NodeName, nameIsDNSSubdomain(va.Spec.NodeName, false))...)
	st := field.NewPath("status")
	for _, e := range []struct {
		name string
		err  *storagev1.VolumeError
	}{{"attachError", va.Status.AttachError}, {"detachError", va.Status.DetachError}} {
		if e.err != nil && len(e.err.Message) > maxVolumeErrorMessageSize {
			errs = append(errs, field.TooLong(st.Child(e.name, "message"), "", maxVolumeErrorMessageSize))
		}
	}
	return errs
}
