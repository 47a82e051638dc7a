package apiserver

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/storage"
)

// The memoized list encodings must be exactly what the generic encoders write.
func TestCachedListMatchesGenericEncoding(t *testing.T) {
	reg, err := resources.NewRegistry(resources.NewScheme())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg})
	pods, _ := reg.Get(corev1.SchemeGroupVersion.WithResource("pods"))
	events, _ := reg.Get(eventsv1.SchemeGroupVersion.WithResource("events"))
	podPage, eventPage := &storage.ListResult{}, &storage.ListResult{}
	for _, name := range []string{"a", "b", "c"} {
		meta := metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "7", Labels: map[string]string{"x": "é\"<"}}
		podPage.Items = append(podPage.Items, &corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}, ObjectMeta: meta,
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
		})
		podPage.Memos = append(podPage.Memos, &storage.Memo{})
		// Stored as core/v1 events, listed as events.k8s.io/v1.
		eventPage.Items = append(eventPage.Items, &corev1.Event{
			TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "v1"}, ObjectMeta: meta,
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name}, Message: "m", Count: 2,
		})
		eventPage.Memos = append(eventPage.Memos, &storage.Memo{})
	}
	// A memo shared with another version's list must not leak into this one.
	if _, err := eventPage.Memos[0].Get(runtime.ContentTypeJSON, func() ([]byte, error) { return []byte(`{"core":"v1"}`), nil }); err != nil {
		t.Fatal(err)
	}
	lm := metav1.ListMeta{ResourceVersion: "9", Continue: "tok", RemainingItemCount: ptr.To[int64](4)}
	for _, c := range []struct {
		res  *resources.Resource
		page *storage.ListResult
	}{{pods, podPage}, {events, eventPage}} {
		req := &request{gvr: c.res.GVR, res: c.res, verb: "list"}
		page := c.page
		for _, accept := range []string{runtime.ContentTypeJSON, runtime.ContentTypeProtobuf} {
			t.Run(c.res.GVR.String()+" "+accept, func(t *testing.T) {
				r := httptest.NewRequest("GET", "/api/v1/pods", nil)
				r.Header.Set("Accept", accept)
				out, err := s.negotiate(r)
				if err != nil {
					t.Fatal(err)
				}
				for round := 0; round < 2; round++ { // the second round reads the memos
					fast := httptest.NewRecorder()
					done, err := s.writeCachedList(fast, out, req, page, lm)
					if err != nil || !done {
						t.Fatalf("cached list: done=%v err=%v", done, err)
					}
					generic := httptest.NewRecorder()
					if err := s.writeList(generic, r, req, page.Items, lm); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(fast.Body.Bytes(), generic.Body.Bytes()) {
						t.Fatalf("round %d: cached list differs from the generic encoding:\n%q\n%q", round, fast.Body.String(), generic.Body.String())
					}
					if fast.Header().Get("Content-Type") != generic.Header().Get("Content-Type") || fast.Code != http.StatusOK {
						t.Fatalf("headers differ: %v vs %v", fast.Header(), generic.Header())
					}
				}
			})
		}
	}
}
