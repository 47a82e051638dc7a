package resources

import (
	"bytes"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ControllerRevisions is apps/v1 controllerrevisions: the immutable
// template snapshots StatefulSets and DaemonSets roll between.
func ControllerRevisions() *Resource {
	return &Resource{
		GVR:          appsv1.SchemeGroupVersion.WithResource("controllerrevisions"),
		Kind:         "ControllerRevision",
		SingularName: "controllerrevision",
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.ControllerRevision{} },
		NewList:      func() runtime.Object { return &appsv1.ControllerRevisionList{} },
		Validate:     typedValidate(validateControllerRevision),
		ValidateUpdate: typedValidateUpdate(func(r, old *appsv1.ControllerRevision) field.ErrorList {
			if !bytes.Equal(r.Data.Raw, old.Data.Raw) {
				return field.ErrorList{field.Invalid(field.NewPath("data"), "", "field is immutable")}
			}
			return nil
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Controller", Type: "string", Description: "Controller of the object"},
			{Name: "Revision", Type: "integer", Description: appsv1.ControllerRevision{}.SwaggerDoc()["revision"]},
			ageColumn,
		},
		Row: typedRowNow(controllerRevisionRow),
	}
}

// validateControllerRevision checks what upstream's
// ValidateControllerRevision does: a name, data, a non-negative revision.
// Data is immutable once written.
func validateControllerRevision(r *appsv1.ControllerRevision) field.ErrorList {
	errs := validateMeta(&r.ObjectMeta, true, nameIsDNSSubdomain)
	if r.Data.Raw == nil && r.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	if r.Revision < 0 {
		errs = append(errs, field.Invalid(field.NewPath("revision"), r.Revision, isNegativeErrorMsg))
	}
	return errs
}

// controllerRevisionRow names the controller as kubectl does: kind.group/name.
func controllerRevisionRow(r *appsv1.ControllerRevision, now time.Time) []any {
	controller := "<none>"
	if ref := metav1.GetControllerOf(r); ref != nil {
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		controller = strings.ToLower(ref.Kind)
		if gv.Group != "" {
			controller += "." + gv.Group
		}
		controller += "/" + ref.Name
	}
	return []any{r.Name, controller, r.Revision, age(r.CreationTimestamp, now)}
}
