package fakeapi

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// Event is one event a controller recorded.
type Event struct {
	Object  string // namespace/name of the object the event is about
	Type    string
	Reason  string
	Message string
}

// Recorder is a record.EventRecorder keeping events in memory. Unlike
// client-go's FakeRecorder it never blocks, however many events a test
// produces.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Event records an event.
func (r *Recorder) Event(obj runtime.Object, eventtype, reason, message string) {
	name := "?"
	if m, err := meta.Accessor(obj); err == nil {
		name = m.GetNamespace() + "/" + m.GetName()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{Object: name, Type: eventtype, Reason: reason, Message: message})
}

// Eventf records an event with a formatted message.
func (r *Recorder) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	r.Event(obj, eventtype, reason, fmt.Sprintf(format, args...))
}

// AnnotatedEventf records an event; annotations are dropped.
func (r *Recorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, eventtype, reason, format string, args ...any) {
	r.Eventf(obj, eventtype, reason, format, args...)
}

// Events returns the events recorded so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
