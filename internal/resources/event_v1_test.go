package resources

import (
	"math/rand"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	"k8s.io/apimachinery/pkg/api/equality"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// newEventV1 is an event as a client of events.k8s.io/v1 (client-go's
// events recorder) writes it.
func newEventV1() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.17a8b1c2d3e4f5a6", Namespace: "default"},
		EventTime:           metav1.NewMicroTime(testNow),
		ReportingController: "wharf.dev/scheduler",
		ReportingInstance:   "server-1",
		Action:              "Binding",
		Reason:              "Scheduled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-1", APIVersion: "v1"},
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		Note:                "Successfully assigned default/web to node-1",
		Type:                corev1.EventTypeNormal,
		Series:              &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(testNow.Add(time.Minute))},
	}
}

func TestEventV1Conversion(t *testing.T) {
	// A core/v1 event reads back with the newer API's names.
	got := eventToV1(newEvent())
	want := &eventsv1.Event{
		ObjectMeta:               metav1.ObjectMeta{Name: "web.17a8b1c2d3e4f5a6", Namespace: "default"},
		Regarding:                corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-1", APIVersion: "v1", FieldPath: "spec.containers{nginx}"},
		Reason:                   "Pulled",
		Note:                     "Container image \"nginx:1.27\" already present on machine ",
		DeprecatedSource:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		DeprecatedFirstTimestamp: ago(10 * time.Minute),
		DeprecatedLastTimestamp:  ago(2 * time.Minute),
		DeprecatedCount:          3,
		Type:                     corev1.EventTypeNormal,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("core/v1 to events.k8s.io/v1 (-want +got):\n%s", diff)
	}

	// And an events.k8s.io/v1 event is stored with core/v1's.
	stored := eventFromV1(newEventV1())
	wantStored := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.17a8b1c2d3e4f5a6", Namespace: "default"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-1", APIVersion: "v1"},
		Reason:              "Scheduled",
		Message:             "Successfully assigned default/web to node-1",
		Type:                corev1.EventTypeNormal,
		EventTime:           metav1.NewMicroTime(testNow),
		Series:              &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(testNow.Add(time.Minute))},
		Action:              "Binding",
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		ReportingController: "wharf.dev/scheduler",
		ReportingInstance:   "server-1",
	}
	if diff := cmp.Diff(wantStored, stored); diff != "" {
		t.Errorf("events.k8s.io/v1 to core/v1 (-want +got):\n%s", diff)
	}

	// The conversions copy: the argument (a cached object) is left alone.
	in := newEvent()
	in.Labels = map[string]string{"a": "b"}
	out := eventToV1(in)
	out.Labels["a"] = "changed"
	out.Regarding.Name = "changed"
	if in.Labels["a"] != "b" || in.InvolvedObject.Name != "web" {
		t.Error("eventToV1 shares memory with its argument")
	}
}

// Every field has a place in both versions: upstream's round trip through
// either holds for any object.
func TestEventV1RoundTrip(t *testing.T) {
	f := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(1), serializer.NewCodecFactory(NewScheme()))
	for i := range 500 {
		var core corev1.Event
		f.Fill(&core)
		core.TypeMeta = metav1.TypeMeta{}
		if back := eventFromV1(eventToV1(&core)); !equality.Semantic.DeepEqual(&core, back) {
			t.Fatalf("%d: core/v1 -> events.k8s.io/v1 -> core/v1 changed it:\n%s", i, cmp.Diff(&core, back))
		}
		var ev eventsv1.Event
		f.Fill(&ev)
		ev.TypeMeta = metav1.TypeMeta{}
		if back := eventToV1(eventFromV1(&ev)); !equality.Semantic.DeepEqual(&ev, back) {
			t.Fatalf("%d: events.k8s.io/v1 -> core/v1 -> events.k8s.io/v1 changed it:\n%s", i, cmp.Diff(&ev, back))
		}
	}
}

func TestEventV1Validate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*eventsv1.Event)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*eventsv1.Event) {}},
		{name: "no eventTime", mutate: func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} }, want: []wantErr{required("eventTime")}},
		{name: "no reporter", mutate: func(e *eventsv1.Event) { e.ReportingController = "" },
			want: []wantErr{required("reportingController")}},
		{name: "bad type", mutate: func(e *eventsv1.Event) { e.Type = "Fine" }, want: []wantErr{invalid("type")}},
		{name: "deprecated fields are core/v1's", mutate: func(e *eventsv1.Event) {
			e.DeprecatedCount = 2
			e.DeprecatedSource.Component = "kubelet"
			e.DeprecatedFirstTimestamp = ago(time.Minute)
		}, want: []wantErr{invalid("count"), invalid("source"), invalid("firstTimestamp")}},
		{name: "short series", mutate: func(e *eventsv1.Event) { e.Series.Count = 1 }, want: []wantErr{invalid("series.count")}},
		{name: "cluster-scoped object outside default", mutate: func(e *eventsv1.Event) {
			e.Regarding = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
			e.Namespace = "team"
		}, want: []wantErr{invalid("involvedObject.namespace")}},
	}
	v1 := EventsV1()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEventV1()
			tt.mutate(e)
			checkErrs(t, v1.ValidateWrite(t.Context(), eventFromV1(e), nil), tt.want...)
		})
	}

	// A core/v1-style event is fine in core/v1, not new through events.k8s.io/v1.
	if errs := Events().Validate(newEvent()); len(errs) > 0 {
		t.Errorf("core/v1 event invalid through core/v1: %v", errs)
	}
	checkErrs(t, v1.ValidateWrite(t.Context(), newEvent(), nil),
		required("eventTime"), invalid("firstTimestamp"), invalid("lastTimestamp"), invalid("count"), invalid("source"))

	// Once written, only the series and metadata change through events.k8s.io/v1;
	// a core/v1 event may still be labelled through it.
	old := eventFromV1(newEventV1())
	old.ResourceVersion = "7"
	next := old.DeepCopy()
	next.Series.Count = 3
	next.Labels = map[string]string{"seen": "yes"}
	checkErrs(t, v1.ValidateWrite(t.Context(), next, old))
	next.Message = "changed"
	next.Type = corev1.EventTypeWarning
	checkErrs(t, v1.ValidateWrite(t.Context(), next, old), invalid("message"), invalid("type"))
	legacy := newEvent()
	legacy.ResourceVersion = "7"
	labelled := legacy.DeepCopy()
	labelled.Labels = map[string]string{"seen": "yes"}
	checkErrs(t, v1.ValidateWrite(t.Context(), labelled, legacy))
}

func TestEventV1FieldLabels(t *testing.T) {
	c := EventsV1().Conversion
	for label, want := range map[string]string{
		"regarding.name": "involvedObject.name", "regarding.kind": "involvedObject.kind",
		"reportingController": "reportingComponent", "type": "type", "metadata.name": "metadata.name",
	} {
		if got, ok := c.FieldLabel(label); !ok || got != want {
			t.Errorf("%s maps to %q (%v), want %q", label, got, ok, want)
		}
	}
	// Upstream's events.k8s.io has no source, nor core/v1's names.
	for _, label := range []string{"source", "involvedObject.name", "reportingComponent"} {
		if got, ok := c.FieldLabel(label); ok {
			t.Errorf("%s supported (as %q)", label, got)
		}
	}
	// Every mapped label is one the stored kind selects by.
	fields := Events().SelectableFields(newEvent())
	for label, stored := range eventsV1FieldLabels {
		if _, ok := fields[stored]; !ok {
			t.Errorf("%s maps to %s, which core/v1 events do not select by", label, stored)
		}
	}
}
