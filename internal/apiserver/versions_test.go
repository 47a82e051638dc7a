package apiserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// Events are served in core/v1 and events.k8s.io/v1: one stored object,
// written through either and read, listed, selected and watched through
// the other, as kube-apiserver serves them.
func TestEventsInTwoVersions(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	core := s.Client.CoreV1().Events("default")
	v1 := s.Client.EventsV1().Events("default")

	w, err := v1.Watch(ctx, metav1.ListOptions{FieldSelector: "regarding.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// core/v1 written, events.k8s.io/v1 read.
	first := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	if _, err := core.Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", APIVersion: "v1"},
		Reason:         "Pulled", Message: "pulled nginx", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: first, LastTimestamp: first, Count: 3,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := v1.Get(ctx, "web.1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Regarding.Name != "web" || got.Note != "pulled nginx" || got.DeprecatedSource.Host != "node-1" ||
		got.DeprecatedCount != 3 || !got.DeprecatedFirstTimestamp.Equal(&first) || got.Reason != "Pulled" {
		t.Errorf("events.k8s.io/v1 view of a core/v1 event: %+v", got)
	}

	// events.k8s.io/v1 written, core/v1 read.
	when := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))
	created, err := v1.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.2"}, EventTime: when,
		ReportingController: "wharf.dev/scheduler", ReportingInstance: "server-1", Action: "Binding", Reason: "Scheduled",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}, Note: "assigned to node-1", Type: corev1.EventTypeNormal,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ManagedFields) != 1 || created.ManagedFields[0].APIVersion != "events.k8s.io/v1" {
		t.Errorf("managed fields of the create: %+v, want one entry in events.k8s.io/v1", created.ManagedFields)
	}
	stored, err := core.Get(ctx, "web.2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stored.InvolvedObject.Name != "web" || stored.Message != "assigned to node-1" || stored.ReportingController != "wharf.dev/scheduler" ||
		stored.Action != "Binding" || !stored.EventTime.Equal(&when) || stored.UID != created.UID {
		t.Errorf("core/v1 view of an events.k8s.io/v1 event: %+v", stored)
	}

	// The watch through events.k8s.io/v1 saw both, converted.
	for _, name := range []string{"web.1", "web.2"} {
		select {
		case ev := <-w.ResultChan():
			e, ok := ev.Object.(*eventsv1.Event)
			if !ok || ev.Type != watch.Added || e.Name != name || e.Regarding.Name != "web" || e.Note == "" {
				t.Fatalf("watch event %s %T %+v, want ADDED %s", ev.Type, ev.Object, ev.Object, name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no watch event for %s", name)
		}
	}

	// Field selectors name each version's fields.
	if _, err := core.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "db.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "db"}, Reason: "Killing", Type: corev1.EventTypeWarning,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		selector string
		want     []string
	}{
		{"regarding.name=web", []string{"web.1", "web.2"}},
		{"regarding.name=db", []string{"db.1"}},
		{"type=Warning", []string{"db.1"}},
		{"reportingController=wharf.dev/scheduler", []string{"web.2"}},
	} {
		list, err := v1.List(ctx, metav1.ListOptions{FieldSelector: c.selector})
		if err != nil {
			t.Fatalf("%s: %v", c.selector, err)
		}
		var names []string
		for _, e := range list.Items {
			names = append(names, e.Name)
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("events.k8s.io/v1 %s: %v, want %v", c.selector, names, c.want)
		}
	}
	for _, bad := range []string{"source=kubelet", "involvedObject.name=web"} {
		if _, err := v1.List(ctx, metav1.ListOptions{FieldSelector: bad}); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "field label not supported") {
			t.Errorf("events.k8s.io/v1 %s: %v, want field label not supported", bad, err)
		}
	}

	// New events through events.k8s.io/v1 are validated as upstream's:
	// what core/v1 accepts they may refuse.
	legacy := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "old.1"}, Reason: "Pulled", DeprecatedCount: 1,
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}}
	_, err = v1.Create(ctx, legacy, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "eventTime") || !strings.Contains(err.Error(), "Event.events.k8s.io") {
		t.Errorf("a core/v1-style event through events.k8s.io/v1: %v, want invalid eventTime", err)
	}
	// Its content is fixed once written; labels are not.
	created.Note = "changed"
	if _, err := v1.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("changing an event's note: %v, want Invalid", err)
	}
	patched, err := v1.Patch(ctx, "web.1", types.MergePatchType, []byte(`{"metadata":{"labels":{"seen":"yes"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Labels["seen"] != "yes" || patched.Note != "pulled nginx" {
		t.Fatalf("labelling a core/v1 event through events.k8s.io/v1: %v %+v", err, patched)
	}
	e, err := core.Get(ctx, "web.1", metav1.GetOptions{})
	if err != nil || e.Labels["seen"] != "yes" || e.Message != "pulled nginx" {
		t.Errorf("label written through events.k8s.io/v1 not in core/v1: %v %+v", err, e)
	}
	versions := map[string]bool{}
	for _, m := range e.ManagedFields {
		versions[m.APIVersion] = true
	}
	if !versions["v1"] || !versions["events.k8s.io/v1"] {
		t.Errorf("managed fields after writes through both versions: %+v", e.ManagedFields)
	}

	// Tables print alike in both versions; the object included is the URL's version.
	a := newAPI(t, s)
	for _, path := range []string{"/api/v1/namespaces/default/events/web.2", "/apis/events.k8s.io/v1/namespaces/default/events/web.2"} {
		code, body := a.get(path+"?includeObject=Object", "application/json;as=Table;v=v1;g=meta.k8s.io")
		var table metav1.Table
		if err := json.Unmarshal(body, &table); code != http.StatusOK || err != nil || len(table.Rows) != 1 {
			t.Fatalf("table of %s: %d %v %s", path, code, err, body)
		}
		if table.ColumnDefinitions[0].Name != "Last Seen" || table.Rows[0].Cells[2] != "Scheduled" {
			t.Errorf("table of %s: %v %v", path, table.ColumnDefinitions, table.Rows[0].Cells)
		}
		want := `"apiVersion":"v1"`
		if strings.Contains(path, "events.k8s.io") {
			want = `"apiVersion":"events.k8s.io/v1"`
		}
		if !strings.Contains(string(table.Rows[0].Object.Raw), want) {
			t.Errorf("table of %s includes %s, want %s", path, table.Rows[0].Object.Raw, want)
		}
	}
	// So do lists in protobuf, from the list cache.
	list, err := v1.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 3 || list.Items[0].Regarding.Name == "" {
		t.Errorf("events.k8s.io/v1 list: %v %+v", err, list)
	}
}

// HorizontalPodAutoscalers are stored as autoscaling/v2 and served in v1
// too; v1 keeps what it has no field for in annotations, so a v1 client
// writing back what it read loses nothing.
func TestHPAsInTwoVersions(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	v1 := s.Client.AutoscalingV1().HorizontalPodAutoscalers("default")
	v2 := s.Client.AutoscalingV2().HorizontalPodAutoscalers("default")
	ref := autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}

	// What kubectl autoscale 1.27 sends.
	if _, err := v1.Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3, TargetCPUUtilizationPercentage: ptr.To[int32](50)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := v2.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 50 ||
		h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 1 || len(h.Annotations) != 0 {
		t.Errorf("autoscaling/v2 view of a v1 autoscaler: %+v", h)
	}

	// A v2 autoscaler with more than v1 can say.
	mem := resource.MustParse("100Mi")
	h.Spec.Metrics = append([]autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &mem}}}}, h.Spec.Metrics...)
	h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](60),
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 30}}}}
	// v1's round-trip annotations sent through v2 are not kept, as upstream.
	h.Annotations = map[string]string{"autoscaling.alpha.kubernetes.io/conditions": "[]", "team": "a"}
	if h, err = v2.Update(ctx, h, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(h.Annotations) != 1 || h.Annotations["team"] != "a" {
		t.Errorf("annotations through v2: %v", h.Annotations)
	}
	got, err := v1.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Spec.TargetCPUUtilizationPercentage != 50 || !strings.Contains(got.Annotations["autoscaling.alpha.kubernetes.io/metrics"], "memory") ||
		!strings.Contains(got.Annotations["autoscaling.alpha.kubernetes.io/behavior"], `"StabilizationWindowSeconds":60`) {
		t.Errorf("autoscaling/v1 view: %+v", got)
	}
	// Written back through v1 with a change: the rest survives.
	got.Spec.MaxReplicas = 7
	if _, err := v1.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err = v2.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Spec.MaxReplicas != 7 || len(h.Spec.Metrics) != 2 || h.Spec.Metrics[0].Resource.Name != corev1.ResourceMemory ||
		h.Spec.Behavior == nil || h.Spec.Behavior.ScaleDown == nil || *h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 60 ||
		len(h.Annotations) != 1 {
		t.Errorf("after a v1 update, v2 reads %+v", h)
	}

	// Status through v1's /status.
	got, _ = v1.Get(ctx, "web", metav1.GetOptions{})
	got.Status.CurrentReplicas, got.Status.DesiredReplicas, got.Status.CurrentCPUUtilizationPercentage = 2, 3, ptr.To[int32](90)
	delete(got.Annotations, "autoscaling.alpha.kubernetes.io/current-metrics")
	if _, err := v1.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if h, err = v2.Get(ctx, "web", metav1.GetOptions{}); err != nil || h.Status.DesiredReplicas != 3 || len(h.Status.CurrentMetrics) != 1 ||
		*h.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != 90 {
		t.Errorf("status written through v1, v2 reads: %v %+v", err, h.Status)
	}

	// Server-side apply through both versions: fields are owned in the
	// version of the write, and conflicts are found across versions.
	applyV2 := `{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"applied"},
		"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"maxReplicas":4}}`
	if _, err := v2.Patch(ctx, "applied", types.ApplyPatchType, []byte(applyV2), metav1.PatchOptions{FieldManager: "team-v2"}); err != nil {
		t.Fatal(err)
	}
	applyV1 := `{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"applied"},
		"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"maxReplicas":6}}`
	if _, err := v1.Patch(ctx, "applied", types.ApplyPatchType, []byte(applyV1), metav1.PatchOptions{FieldManager: "team-v1"}); !apierrors.IsConflict(err) ||
		!strings.Contains(err.Error(), "team-v2") || !strings.Contains(err.Error(), ".spec.maxReplicas") {
		t.Fatalf("v1 apply of a field v2's applier owns: %v, want a conflict with team-v2", err)
	}
	applied, err := v1.Patch(ctx, "applied", types.ApplyPatchType, []byte(applyV1), metav1.PatchOptions{FieldManager: "team-v1", Force: ptr.To(true)})
	if err != nil || applied.Spec.MaxReplicas != 6 {
		t.Fatalf("forced v1 apply: %v %+v", err, applied)
	}
	managers := map[string]string{}
	for _, e := range applied.ManagedFields {
		managers[e.Manager] = e.APIVersion
	}
	if managers["team-v1"] != "autoscaling/v1" || managers["team-v2"] != "autoscaling/v2" {
		t.Errorf("managed fields: %v, want team-v1 in autoscaling/v1 and team-v2 in autoscaling/v2", managers)
	}
	if h, err := v2.Get(ctx, "applied", metav1.GetOptions{}); err != nil || h.Spec.MaxReplicas != 6 {
		t.Errorf("v2 after the forced v1 apply: %v %+v", err, h)
	}
	// A client-side update through v1 records its manager in v1 too.
	scaled, err := v1.Patch(ctx, "applied", types.MergePatchType, []byte(`{"spec":{"minReplicas":2}}`), metav1.PatchOptions{FieldManager: "patcher"})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(scaled.ManagedFields, func(e metav1.ManagedFieldsEntry) bool { return e.Manager == "patcher" }); i < 0 ||
		scaled.ManagedFields[i].APIVersion != "autoscaling/v1" || scaled.ManagedFields[i].Operation != metav1.ManagedFieldsOperationUpdate {
		t.Errorf("managed fields after a v1 patch: %+v", scaled.ManagedFields)
	}

	// Lists and watches through v1 are v1 objects.
	w, err := v1.Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case ev := <-w.ResultChan():
			hv1, ok := ev.Object.(*autoscalingv1.HorizontalPodAutoscaler)
			if !ok || hv1.Spec.TargetCPUUtilizationPercentage == nil {
				t.Fatalf("watch event %s %T %+v", ev.Type, ev.Object, ev.Object)
			}
			seen[hv1.Name] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("watch through autoscaling/v1 saw %v", seen)
		}
	}
	l, err := v1.List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 2 || *l.Items[0].Spec.TargetCPUUtilizationPercentage != 80 {
		t.Errorf("autoscaling/v1 list: %v %+v", err, l)
	}
}

// get fetches path with an Accept header.
func (a *api) get(path, accept string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func TestSelfSubjectReviewV1beta1(t *testing.T) {
	s := startAPIOnly(t)
	r, err := s.Client.AuthenticationV1beta1().SelfSubjectReviews().Create(ctxT(t), &authenticationv1beta1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.UserInfo.Username == "" || len(r.Status.UserInfo.Groups) == 0 {
		t.Errorf("v1beta1 review answered %+v", r.Status)
	}
}

// Discovery lists every version of a group, the preferred one first, as upstream.
func TestDiscoveryListsEveryVersion(t *testing.T) {
	s := startAPIOnly(t)
	groups, err := s.Client.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"events.k8s.io":         {"events.k8s.io/v1"},
		"autoscaling":           {"autoscaling/v2", "autoscaling/v1"},
		"authentication.k8s.io": {"authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"},
	}
	for _, g := range groups.Groups {
		w, ok := want[g.Name]
		if !ok {
			continue
		}
		delete(want, g.Name)
		var got []string
		for _, v := range g.Versions {
			got = append(got, v.GroupVersion)
		}
		if !slices.Equal(got, w) || g.PreferredVersion.GroupVersion != w[0] {
			t.Errorf("group %s: versions %v preferred %s, want %v", g.Name, got, g.PreferredVersion.GroupVersion, w)
		}
	}
	if len(want) > 0 {
		t.Errorf("groups not served: %v", want)
	}
	for gv, resource := range map[string]string{
		"events.k8s.io/v1": "events", "autoscaling/v1": "horizontalpodautoscalers", "authentication.k8s.io/v1beta1": "selfsubjectreviews",
		"v1": "events",
	} {
		list, err := s.Client.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == resource }) {
			t.Errorf("%s lacks %s: %+v", gv, resource, list.APIResources)
		}
	}
}
