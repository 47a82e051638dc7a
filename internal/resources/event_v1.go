package resources

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// EventsV1 is events.k8s.io/v1 events: core/v1 events (the same stored
// objects, table and field selectors) under the field names of the newer
// API, as upstream converts them (pkg/apis/events/v1). Writes through it
// are validated more strictly, as upstream's.
func EventsV1() *Resource {
	r := servedIn(Events(), eventsv1.SchemeGroupVersion,
		func() runtime.Object { return &eventsv1.Event{} },
		func() runtime.Object { return &eventsv1.EventList{} },
		Conversion{
			ToServed:   func(o runtime.Object) (runtime.Object, error) { return eventToV1(o.(*corev1.Event)), nil },
			FromServed: func(o runtime.Object) (runtime.Object, error) { return eventFromV1(o.(*eventsv1.Event)), nil },
			FieldLabel: func(label string) (string, bool) {
				l, ok := eventsV1FieldLabels[label]
				return l, ok
			},
		})
	r.Validate = nil
	r.ValidateWrite = func(_ context.Context, o, old runtime.Object) field.ErrorList {
		if old == nil {
			return validateEventV1Create(o.(*corev1.Event))
		}
		return validateEventV1Update(o.(*corev1.Event), old.(*corev1.Event))
	}
	return r
}

// eventsV1FieldLabels maps events.k8s.io/v1 field selectors to the stored
// kind's, as upstream's AddFieldLabelConversionsForEvent: no "source".
var eventsV1FieldLabels = map[string]string{
	"reason":                    "reason",
	"regarding.kind":            "involvedObject.kind",
	"regarding.namespace":       "involvedObject.namespace",
	"regarding.name":            "involvedObject.name",
	"regarding.uid":             "involvedObject.uid",
	"regarding.apiVersion":      "involvedObject.apiVersion",
	"regarding.resourceVersion": "involvedObject.resourceVersion",
	"regarding.fieldPath":       "involvedObject.fieldPath",
	"reportingController":       "reportingComponent",
	"type":                      "type",
	"metadata.namespace":        "metadata.namespace",
	"metadata.name":             "metadata.name",
}

// eventToV1 is upstream's Convert_core_Event_To_v1_Event: every field has
// a place in both versions, so the conversion loses nothing either way.
func eventToV1(in *corev1.Event) *eventsv1.Event {
	in = in.DeepCopy()
	out := &eventsv1.Event{
		ObjectMeta:               in.ObjectMeta,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if s := in.Series; s != nil {
		out.Series = &eventsv1.EventSeries{Count: s.Count, LastObservedTime: s.LastObservedTime}
	}
	return out
}

// eventFromV1 is upstream's Convert_v1_Event_To_core_Event.
func eventFromV1(in *eventsv1.Event) *corev1.Event {
	in = in.DeepCopy()
	out := &corev1.Event{
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Action:              in.Action,
		Related:             in.Related,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if s := in.Series; s != nil {
		out.Series = &corev1.EventSeries{Count: s.Count, LastObservedTime: s.LastObservedTime}
	}
	return out
}

// validateEventV1Create is upstream's ValidateEventCreate for events.k8s.io/v1
// and later: the legacy checks (reportingController named as this version
// names it), then what new events must carry and must leave to core/v1.
// Paths name the stored fields, as upstream's name the internal ones.
func validateEventV1Create(e *corev1.Event) field.ErrorList {
	errs := validateEventLegacy(e, "reportingController")
	errs = append(errs, validateEventV1Series(e)...)
	if e.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"firstTimestamp", !e.FirstTimestamp.IsZero()},
		{"lastTimestamp", !e.LastTimestamp.IsZero()},
		{"count", e.Count != 0},
		{"source", e.Source.Component != "" || e.Source.Host != ""},
	} {
		if f.set {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", "needs to be unset"))
		}
	}
	return errs
}

// validateEventV1Update is upstream's ValidateEventUpdate for events.k8s.io/v1:
// an event's content is fixed once written; only its series (and
// metadata) move on.
func validateEventV1Update(e, old *corev1.Event) field.ErrorList {
	errs := validateEventLegacy(e, "reportingController")
	errs = append(errs, apivalidation.ValidateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))...)
	if !apiequality.Semantic.DeepEqual(e.Series, old.Series) {
		errs = append(errs, validateEventV1Series(e)...)
	}
	for _, f := range []struct {
		name     string
		new, old any
	}{
		{"involvedObject", e.InvolvedObject, old.InvolvedObject},
		{"reason", e.Reason, old.Reason},
		{"message", e.Message, old.Message},
		{"source", e.Source, old.Source},
		{"firstTimestamp", e.FirstTimestamp, old.FirstTimestamp},
		{"lastTimestamp", e.LastTimestamp, old.LastTimestamp},
		{"count", e.Count, old.Count},
		{"type", e.Type, old.Type},
		{"action", e.Action, old.Action},
		{"related", e.Related, old.Related},
		{"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
	} {
		errs = append(errs, apivalidation.ValidateImmutableField(f.new, f.old, field.NewPath(f.name))...)
	}
	// Clients that truncate to microseconds, as the wire format does, may
	// send eventTime back changed below that.
	if !e.EventTime.Truncate(time.Microsecond).Equal(old.EventTime.Truncate(time.Microsecond)) {
		errs = append(errs, apivalidation.ValidateImmutableField(e.EventTime, old.EventTime, field.NewPath("eventTime"))...)
	}
	return errs
}

func validateEventV1Series(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if s := e.Series; s != nil {
		if s.Count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series.lastObservedTime"), ""))
		}
	}
	return errs
}
