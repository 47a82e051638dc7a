package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.17a8b1c2d3e4f5a6", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-1", APIVersion: "v1", FieldPath: "spec.containers{nginx}"},
		Reason:         "Pulled",
		Message:        "Container image \"nginx:1.27\" already present on machine ",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(10 * time.Minute),
		LastTimestamp:  ago(2 * time.Minute),
		Count:          3,
		Type:           corev1.EventTypeNormal,
	}
}

func TestEventValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Event)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*corev1.Event) {}},
		{name: "cluster-scoped object in default", mutate: func(e *corev1.Event) { e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"} }},
		{name: "new-style event", mutate: func(e *corev1.Event) {
			e.EventTime = metav1.NewMicroTime(testNow)
			e.ReportingController, e.ReportingInstance, e.Action = "wharf.dev/scheduler", "server-1", "Binding"
		}},
		{name: "namespace mismatch", mutate: func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" }, want: []wantErr{invalid("involvedObject.namespace")}},
		{name: "cluster-scoped object elsewhere", mutate: func(e *corev1.Event) {
			e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "n"}
			e.Namespace = "team"
		},
			want: []wantErr{invalid("involvedObject.namespace")}},
		{name: "new-style event without reporter", mutate: func(e *corev1.Event) { e.EventTime = metav1.NewMicroTime(testNow) },
			want: []wantErr{required("reportingComponent"), required("reportingInstance"), required("action")}},
		{name: "bad name", mutate: func(e *corev1.Event) { e.Name = "Web Event" }, want: []wantErr{invalid("metadata.name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvent()
			tt.mutate(e)
			checkErrs(t, Events().Validate(e), tt.want...)
		})
	}
}

func TestEventRowAndFields(t *testing.T) {
	e := newEvent()
	want := []any{"2m", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
		"Container image \"nginx:1.27\" already present on machine", "10m", int64(3), "web.17a8b1c2d3e4f5a6"}
	if diff := cmp.Diff(want, eventRow(e, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	// New-style events: eventTime, a series, and reportingController as source.
	e2 := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "n"}, InvolvedObject: corev1.ObjectReference{Kind: "Node"},
		EventTime: metav1.NewMicroTime(testNow.Add(-time.Hour)), ReportingController: "wharf-scheduler",
		Series: &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(testNow.Add(-time.Minute))},
	}
	got := eventRow(e2, testNow)
	if got[0] != "60s" || got[3] != "node" || got[5] != "wharf-scheduler" || got[7] != "60m" || got[8] != int64(7) {
		t.Errorf("row = %v", got)
	}
	if len(got) != len(Events().Columns) {
		t.Errorf("%d cells for %d columns", len(got), len(Events().Columns))
	}

	f := Events().SelectableFields(e)
	sel := fields.ParseSelectorOrDie("involvedObject.kind=Pod,involvedObject.name=web,involvedObject.namespace=default," +
		"involvedObject.uid=uid-1,involvedObject.fieldPath=spec.containers{nginx},source=kubelet,type=Normal,reason=Pulled,metadata.namespace=default")
	if !sel.Matches(f) {
		t.Errorf("selector %v does not match %v", sel, f)
	}
	for _, k := range []string{"involvedObject.apiVersion", "involvedObject.resourceVersion", "reportingComponent"} {
		if _, ok := f[k]; !ok {
			t.Errorf("field %s not selectable", k)
		}
	}
}
