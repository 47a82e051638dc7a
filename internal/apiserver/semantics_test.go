package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "t"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}}},
	}
}

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}, {Name: "d", Image: "busybox:1"}}},
			},
		},
	}
}

func TestServerOwnedFieldsAndConflicts(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	deps := s.Client.AppsV1().Deployments("default")
	d, err := deps.Create(ctx, newDeployment("web", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.CreationTimestamp.IsZero() || d.Generation != 1 || d.ResourceVersion == "" {
		t.Fatalf("server-owned fields not set: uid=%q created=%v generation=%d rv=%q", d.UID, d.CreationTimestamp, d.Generation, d.ResourceVersion)
	}
	if d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("defaults not applied: revisionHistoryLimit=%v", d.Spec.RevisionHistoryLimit)
	}

	// A label change is not a spec change: generation stays.
	d.Labels = map[string]string{"tier": "front"}
	d2, err := deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Generation != 1 {
		t.Errorf("generation %d after a metadata-only update, want 1", d2.Generation)
	}
	// A stale resourceVersion conflicts.
	d.Spec.Replicas = ptr.To[int32](3)
	if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("update with a stale resourceVersion: %v, want Conflict", err)
	}
	// A spec change bumps generation; status written through the main resource is ignored.
	d2.Spec.Replicas = ptr.To[int32](3)
	d2.Status.Replicas = 42
	d3, err := deps.Update(ctx, d2, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d3.Generation != 2 || d3.Status.Replicas != 0 {
		t.Errorf("after spec update: generation %d (want 2), status.replicas %d (want 0)", d3.Generation, d3.Status.Replicas)
	}
	// Status through /status changes status only.
	d3.Status.Replicas = 3
	d3.Spec.Replicas = ptr.To[int32](9)
	d4, err := deps.UpdateStatus(ctx, d3, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d4.Status.Replicas != 3 || *d4.Spec.Replicas != 3 || d4.Generation != 2 {
		t.Errorf("after status update: status.replicas %d (want 3), spec.replicas %d (want 3), generation %d (want 2)", d4.Status.Replicas, *d4.Spec.Replicas, d4.Generation)
	}
	// Writing the same object again stores nothing.
	d5, err := deps.Update(ctx, d4, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d5.ResourceVersion != d4.ResourceVersion {
		t.Errorf("no-op update changed resourceVersion %s -> %s", d4.ResourceVersion, d5.ResourceVersion)
	}
	if _, err := deps.Create(ctx, newDeployment("web", 1), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
}

func TestPatchTypesAndScale(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	deps := s.Client.AppsV1().Deployments("default")
	if _, err := deps.Create(ctx, newDeployment("p", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		typ   types.PatchType
		patch string
		check func(*appsv1.Deployment) error
	}{
		{"strategic merge keeps the other container", types.StrategicMergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"d","image":"busybox:2"}]}}}}`,
			func(d *appsv1.Deployment) error {
				cs := d.Spec.Template.Spec.Containers
				if len(cs) != 2 || cs[0].Image != "nginx:1" || cs[1].Image != "busybox:2" {
					return fmt.Errorf("containers %+v", cs)
				}
				return nil
			}},
		{"merge patch replaces the list", types.MergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"nginx:2"}]}}}}`,
			func(d *appsv1.Deployment) error {
				if cs := d.Spec.Template.Spec.Containers; len(cs) != 1 || cs[0].Name != "only" {
					return fmt.Errorf("containers %+v", cs)
				}
				return nil
			}},
		{"json patch", types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":4}]`,
			func(d *appsv1.Deployment) error {
				if *d.Spec.Replicas != 4 {
					return fmt.Errorf("replicas %d", *d.Spec.Replicas)
				}
				return nil
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := deps.Patch(ctx, "p", tc.typ, []byte(tc.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(d); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("json patch that does not apply", func(t *testing.T) {
		_, err := deps.Patch(ctx, "p", types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":99}]`), metav1.PatchOptions{})
		if !apierrors.IsInvalid(err) && apierrors.ReasonForError(err) != metav1.StatusReasonInvalid && err == nil {
			t.Fatalf("failed test op: %v", err)
		}
	})
	t.Run("patch of a missing object", func(t *testing.T) {
		if _, err := deps.Patch(ctx, "none", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})
	t.Run("scale", func(t *testing.T) {
		sc, err := deps.GetScale(ctx, "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Spec.Replicas != 4 || sc.Status.Selector != "app=p" {
			t.Fatalf("scale %+v", sc)
		}
		if _, err := deps.Patch(ctx, "p", types.MergePatchType, []byte(`{"spec":{"replicas":7}}`), metav1.PatchOptions{}, "scale"); err != nil {
			t.Fatal(err)
		}
		d, _ := deps.Get(ctx, "p", metav1.GetOptions{})
		if *d.Spec.Replicas != 7 {
			t.Fatalf("replicas %d after scale patch, want 7", *d.Spec.Replicas)
		}
		sc.Spec.Replicas = -1
		sc.ResourceVersion = ""
		if _, err := deps.UpdateScale(ctx, "p", sc, metav1.UpdateOptions{}); err == nil {
			t.Fatal("negative scale accepted")
		}
	})
}

func TestGracefulPodDeletionAndFinalizers(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	podsC := s.Client.CoreV1().Pods("default")
	if _, err := podsC.Create(ctx, newPod("bound"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := podsC.Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := podsC.Bind(ctx, bind, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second binding: %v, want Conflict", err)
	}
	p, _ := podsC.Get(ctx, "bound", metav1.GetOptions{})
	if p.Spec.NodeName != "n1" || !hasPodCondition(p, corev1.PodScheduled) {
		t.Fatalf("after binding: nodeName %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	}
	if p.Spec.ServiceAccountName != "default" || len(p.Spec.Tolerations) != 2 {
		t.Errorf("admission defaults: serviceAccount %q, tolerations %+v", p.Spec.ServiceAccountName, p.Spec.Tolerations)
	}
	// A pod on a node waits for its grace period; a second delete with grace 0 ends it.
	if err := podsC.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := podsC.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("after graceful delete: %v %+v", err, p.ObjectMeta)
	}
	if err := podsC.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := podsC.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after delete with grace 0: %v, want NotFound", err)
	}
	// An unscheduled pod goes at once.
	podsC.Create(ctx, newPod("pending"), metav1.CreateOptions{})
	podsC.Delete(ctx, "pending", metav1.DeleteOptions{})
	if _, err := podsC.Get(ctx, "pending", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unscheduled pod after delete: %v, want NotFound", err)
	}
	// Finalizers hold an object until removed.
	cms := s.Client.CoreV1().ConfigMaps("default")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "held", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "held", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil || len(got.Finalizers) != 2 {
		t.Fatalf("held configmap: %v %+v", err, got.ObjectMeta)
	}
	if _, err := cms.Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("configmap after its finalizers went: %v, want NotFound", err)
	}
}

func hasPodCondition(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func TestNamespaceLifecycle(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	ns := s.Client.CoreV1().Namespaces()
	if _, err := ns.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := ns.Get(ctx, "team", metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("deleted namespace: %v phase %q, want Terminating", err, got.Status.Phase)
	}
	_, err = s.Client.CoreV1().ConfigMaps("team").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in a terminating namespace: %v, want Forbidden", err)
	}
	got.Spec.Finalizers = nil
	if _, err := ns.Finalize(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Get(ctx, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("finalized namespace: %v, want NotFound", err)
	}
	if err := ns.Delete(ctx, "kube-system", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("deleting kube-system: %v, want Forbidden", err)
	}
}

func TestListPagingSelectorsAndWatch(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	podsC := s.Client.CoreV1().Pods("default")
	for i := 0; i < 7; i++ {
		p := newPod(fmt.Sprintf("p%d", i))
		if i%2 == 0 {
			p.Labels["even"] = "yes"
		}
		if _, err := podsC.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	opts := metav1.ListOptions{Limit: 3}
	for {
		l, err := podsC.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if fmt.Sprint(names) != "[p0 p1 p2 p3 p4 p5 p6]" {
		t.Fatalf("paged list %v", names)
	}
	even, err := podsC.List(ctx, metav1.ListOptions{LabelSelector: "even=yes", FieldSelector: "metadata.name!=p0"})
	if err != nil || len(even.Items) != 3 {
		t.Fatalf("selector list: %v, %d items, want 3", err, len(even.Items))
	}
	w, err := podsC.Watch(ctx, metav1.ListOptions{ResourceVersion: even.ResourceVersion, LabelSelector: "even=yes"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	podsC.Create(ctx, newPod("odd"), metav1.CreateOptions{}) // not selected: no event
	podsC.Patch(ctx, "p1", types.MergePatchType, []byte(`{"metadata":{"labels":{"even":"yes"}}}`), metav1.PatchOptions{})
	podsC.Patch(ctx, "p2", types.MergePatchType, []byte(`{"metadata":{"labels":{"even":null}}}`), metav1.PatchOptions{})
	podsC.Delete(ctx, "p4", metav1.DeleteOptions{})
	want := []string{"ADDED p1", "DELETED p2", "DELETED p4"}
	for _, wnt := range want {
		select {
		case ev := <-w.ResultChan():
			if got := fmt.Sprintf("%s %s", ev.Type, ev.Object.(*corev1.Pod).Name); got != wnt {
				t.Fatalf("event %q, want %q", got, wnt)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event, want %q", wnt)
		}
	}
	// History gone: watching from an old revision is 410 Gone.
	if err := s.CompactNow(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = podsC.Watch(ctx, metav1.ListOptions{ResourceVersion: even.ResourceVersion})
	if err == nil {
		// Some clients see the 410 as the first event instead.
		t.Log("watch opened; expecting an error event")
	} else if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from a compacted revision: %v, want 410", err)
	}
}

func TestWatchListSendsInitialEventsAndBookmark(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	podsC := s.Client.CoreV1().Pods("default")
	for _, n := range []string{"a", "b"} {
		podsC.Create(ctx, newPod(n), metav1.CreateOptions{})
	}
	w, err := podsC.Watch(ctx, metav1.ListOptions{
		SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []string
	for len(got) < 3 {
		select {
		case ev := <-w.ResultChan():
			p := ev.Object.(*corev1.Pod)
			if ev.Type == watch.Bookmark {
				got = append(got, "BOOKMARK "+p.Annotations[metav1.InitialEventsAnnotationKey])
			} else {
				got = append(got, string(ev.Type)+" "+p.Name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	if fmt.Sprint(got) != "[ADDED a ADDED b BOOKMARK true]" {
		t.Fatalf("events %v", got)
	}
}

func TestTablesAndServiceAllocation(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	a := newAPI(t, s)
	s.Client.CoreV1().Pods("default").Create(ctx, newPod("tbl"), metav1.CreateOptions{})
	req, _ := http.NewRequest("GET", s.URL+pods, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io, application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		t.Fatal(err)
	}
	if table.Kind != "Table" || len(table.Rows) != 1 || len(table.ColumnDefinitions) == 0 || table.Rows[0].Cells[0] != "tbl" {
		t.Fatalf("table: kind %q, %d rows, %d columns, first row %v", table.Kind, len(table.Rows), len(table.ColumnDefinitions), table.Rows)
	}

	svcs := s.Client.CoreV1().Services("default")
	ips := map[string]bool{}
	for i := 0; i < 5; i++ {
		svc, err := svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ips[svc.Spec.ClusterIP] || svc.Spec.ClusterIP == "" || svc.Spec.Ports[0].NodePort == 0 {
			t.Fatalf("service %d: clusterIP %q (seen: %v), nodePort %d", i, svc.Spec.ClusterIP, ips[svc.Spec.ClusterIP], svc.Spec.Ports[0].NodePort)
		}
		ips[svc.Spec.ClusterIP] = true
	}
	taken, _ := svcs.Get(ctx, "s0", metav1.GetOptions{})
	_, err = svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dup"},
		Spec:       corev1.ServiceSpec{ClusterIP: taken.Spec.ClusterIP, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("service with a taken cluster IP: %v, want Invalid", err)
	}
	// Node ports: a taken one or one outside 30000-32767 is refused,
	// naming it; a free one asked for is given.
	for _, tc := range []struct {
		port int32
		want string
	}{
		{taken.Spec.Ports[0].NodePort, "provided port is already allocated"},
		{29999, "provided port is not in the valid range. The range of valid ports is 30000-32767"},
		{32768, "valid range"},
		{32000, ""},
	} {
		svc, err := svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("np-%d", tc.port)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: tc.port}}},
		}, metav1.CreateOptions{})
		switch {
		case tc.want == "" && (err != nil || svc.Spec.Ports[0].NodePort != tc.port):
			t.Errorf("node port %d: %v, %+v", tc.port, err, svc)
		case tc.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprint(tc.port))):
			t.Errorf("node port %d: %v, want Invalid naming it: %q", tc.port, err, tc.want)
		}
	}
	// A LoadBalancer service with externalTrafficPolicy Local gets a
	// health check node port of its own, kept across updates, dropped
	// with the policy; a taken one asked for is refused.
	lb, err := svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lb"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := lb.Spec.HealthCheckNodePort
	if hc < 30000 || hc > 32767 || hc == lb.Spec.Ports[0].NodePort {
		t.Fatalf("health check node port %d (node port %d)", hc, lb.Spec.Ports[0].NodePort)
	}
	lb.Spec.HealthCheckNodePort = 0
	if lb, err = svcs.Update(ctx, lb, metav1.UpdateOptions{}); err != nil || lb.Spec.HealthCheckNodePort != hc {
		t.Fatalf("after an update without it: %v, port %d, want %d", err, lb.Spec.HealthCheckNodePort, hc)
	}
	_, err = svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lb2"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort: hc, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "healthCheckNodePort") {
		t.Errorf("a taken health check node port: %v, want Invalid", err)
	}
	lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	if lb, err = svcs.Update(ctx, lb, metav1.UpdateOptions{}); err != nil || lb.Spec.HealthCheckNodePort != 0 {
		t.Errorf("policy Cluster: %v, health check node port %d, want none", err, lb.Spec.HealthCheckNodePort)
	}
}

var _ kubernetes.Interface = nil

// TestServiceTypeChange: changing a service's type alone, by a patch as
// `kubectl patch` sends it or by a replace of the object read, drops what
// belonged to the old type (node ports, the health check port).
func TestServiceTypeChange(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	svcs := s.Client.CoreV1().Services("default")
	for _, tc := range []struct {
		name, from, how string
	}{
		{"np-merge", "NodePort", "merge"},
		{"lb-merge", "LoadBalancer", "merge"},
		{"lb-strategic", "LoadBalancer", "strategic"},
		{"lb-replace", "LoadBalancer", "replace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := svcs.Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceType(tc.from), ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
					Ports: []corev1.ServicePort{{Port: 80}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			patch := []byte(`{"spec":{"type":"ClusterIP"}}`)
			switch tc.how {
			case "merge":
				svc, err = svcs.Patch(ctx, tc.name, types.MergePatchType, patch, metav1.PatchOptions{})
			case "strategic":
				svc, err = svcs.Patch(ctx, tc.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			default:
				svc.Spec.Type = corev1.ServiceTypeClusterIP
				svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
			}
			if err != nil {
				t.Fatalf("%s to ClusterIP: %v", tc.from, err)
			}
			if svc.Spec.Ports[0].NodePort != 0 || svc.Spec.HealthCheckNodePort != 0 || svc.Spec.ExternalTrafficPolicy != "" {
				t.Errorf("after the change: nodePort %d, healthCheckNodePort %d, externalTrafficPolicy %q; want none",
					svc.Spec.Ports[0].NodePort, svc.Spec.HealthCheckNodePort, svc.Spec.ExternalTrafficPolicy)
			}
		})
	}
}
