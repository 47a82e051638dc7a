package resources

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// testNow is the clock of every table test: nothing here depends on timing.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

// wantErr is one expected validation error: its type and field path.
type wantErr struct {
	typ  field.ErrorType
	path string
}

func (w wantErr) String() string { return fmt.Sprintf("%s %s", w.typ, w.path) }

func required(path string) wantErr     { return wantErr{field.ErrorTypeRequired, path} }
func invalid(path string) wantErr      { return wantErr{field.ErrorTypeInvalid, path} }
func notSupported(path string) wantErr { return wantErr{field.ErrorTypeNotSupported, path} }
func duplicate(path string) wantErr    { return wantErr{field.ErrorTypeDuplicate, path} }
func forbidden(path string) wantErr    { return wantErr{field.ErrorTypeForbidden, path} }
func notFound(path string) wantErr     { return wantErr{field.ErrorTypeNotFound, path} }
func tooLong(path string) wantErr      { return wantErr{field.ErrorTypeTooLong, path} }

// checkErrs fails unless errs is empty when nothing is wanted, and holds each
// wanted error otherwise.
func checkErrs(t *testing.T, errs field.ErrorList, want ...wantErr) {
	t.Helper()
	if len(want) == 0 {
		if len(errs) > 0 {
			t.Fatalf("unexpected errors:\n%s", errList(errs))
		}
		return
	}
	for _, w := range want {
		found := false
		for _, e := range errs {
			if e.Type == w.typ && e.Field == w.path {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("missing error %v; got:\n%s", w, errList(errs))
		}
	}
}

func errList(errs field.ErrorList) string {
	if len(errs) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s %s: %s\n", e.Type, e.Field, e.Detail)
	}
	return b.String()
}

// newPod returns a minimal pod as a user writes it (not defaulted).
func newPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}},
		},
	}
}

// defaultedPod is newPod after defaulting, the state validation sees.
func defaultedPod(mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := newPod()
	for _, m := range mutate {
		m(p)
	}
	defaultPod(p)
	return p
}
