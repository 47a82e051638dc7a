package apiserver_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
)

func deploymentApply(name string, replicas int32, containers ...string) *appsv1ac.DeploymentApplyConfiguration {
	labels := map[string]string{"app": name}
	spec := corev1ac.PodSpec()
	for _, c := range containers {
		spec.WithContainers(corev1ac.Container().WithName(c).WithImage("busybox:1"))
	}
	d := appsv1ac.Deployment(name, "default").WithSpec(appsv1ac.DeploymentSpec().
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
		WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(spec)))
	if replicas >= 0 {
		d.Spec.WithReplicas(replicas)
	}
	return d
}

// managers returns "manager/operation[/subresource]" of each managedFields entry.
func managers(d *appsv1.Deployment) []string {
	var out []string
	for _, e := range d.ManagedFields {
		s := e.Manager + "/" + string(e.Operation)
		if e.Subresource != "" {
			s += "/" + e.Subresource
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func containerNames(d *appsv1.Deployment) []string {
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

func TestServerSideApply(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	deps := s.Client.AppsV1().Deployments("default")

	// A dry run creates nothing.
	if _, err := deps.Apply(ctx, deploymentApply("web", 2, "c"), metav1.ApplyOptions{FieldManager: "a", DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := deps.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a dry-run apply: %v, want NotFound", err)
	}
	// Apply creates, with the manager's entry and the kind's defaults.
	d, err := deps.Apply(ctx, deploymentApply("web", 2, "c"), metav1.ApplyOptions{FieldManager: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := managers(d); !slices.Equal(got, []string{"a/Apply"}) {
		t.Errorf("managers after create %v, want [a/Apply]", got)
	}
	if d.Generation != 1 || d.Spec.RevisionHistoryLimit == nil || *d.Spec.Replicas != 2 {
		t.Errorf("created deployment: generation %d, revisionHistoryLimit %v, replicas %d", d.Generation, d.Spec.RevisionHistoryLimit, *d.Spec.Replicas)
	}

	// Another manager setting a field a owns conflicts, with the field and its owner named.
	_, err = deps.Apply(ctx, deploymentApply("web", 5, "c"), metav1.ApplyOptions{FieldManager: "b"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("conflicting apply: %v, want Conflict", err)
	}
	st := err.(apierrors.APIStatus).Status()
	if st.Details == nil || !slices.ContainsFunc(st.Details.Causes, func(c metav1.StatusCause) bool {
		return c.Type == metav1.CauseTypeFieldManagerConflict && c.Field == ".spec.replicas" && strings.Contains(c.Message, `"a"`)
	}) {
		t.Errorf("conflict causes %+v, want .spec.replicas owned by \"a\"", st.Details)
	}
	// The same value is shared ownership, not a conflict; another
	// container in the list is merged by its name.
	d, err = deps.Apply(ctx, deploymentApply("web", 2, "sidecar"), metav1.ApplyOptions{FieldManager: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := containerNames(d); !slices.Equal(got, []string{"c", "sidecar"}) {
		t.Errorf("containers after b's apply %v, want [c sidecar]", got)
	}
	// Forcing takes the field.
	d, err = deps.Apply(ctx, deploymentApply("web", 5, "sidecar"), metav1.ApplyOptions{FieldManager: "b", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 5 || d.Generation != 3 {
		t.Errorf("after a forced apply: replicas %d (want 5), generation %d (want 3)", *d.Spec.Replicas, d.Generation)
	}
	// a stops declaring replicas and its container: its container goes,
	// b's replicas stay.
	d, err = deps.Apply(ctx, deploymentApply("web", -1), metav1.ApplyOptions{FieldManager: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := containerNames(d); !slices.Equal(got, []string{"sidecar"}) || *d.Spec.Replicas != 5 {
		t.Errorf("after a dropped its fields: containers %v (want [sidecar]), replicas %d (want 5)", got, *d.Spec.Replicas)
	}

	// An update is recorded under its field manager; /status under its subresource.
	d.Labels = map[string]string{"tier": "web"}
	d, err = deps.Update(ctx, d, metav1.UpdateOptions{FieldManager: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	d.Status.Replicas = 1
	if d, err = deps.UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: "controller"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/Apply", "b/Apply", "controller/Update/status", "editor/Update"}
	if got := managers(d); !slices.Equal(got, want) {
		t.Errorf("managers %v, want %v", got, want)
	}
	// Status applied through the object itself is dropped, not owned.
	d, err = deps.Apply(ctx, deploymentApply("web", 5, "sidecar").WithStatus(appsv1ac.DeploymentStatus().WithReplicas(9)), metav1.ApplyOptions{FieldManager: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas != 1 {
		t.Errorf("status.replicas %d after applying it through the object, want 1 (unchanged)", d.Status.Replicas)
	}
	// ... and applied through /status it is taken.
	d, err = deps.ApplyStatus(ctx, appsv1ac.Deployment("web", "default").WithStatus(appsv1ac.DeploymentStatus().WithReplicas(3)), metav1.ApplyOptions{FieldManager: "controller", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas != 3 || *d.Spec.Replicas != 5 {
		t.Errorf("after applying status: status.replicas %d (want 3), spec.replicas %d (want 5)", d.Status.Replicas, *d.Spec.Replicas)
	}
	// A client may reset the records with one empty entry.
	d.ManagedFields = []metav1.ManagedFieldsEntry{{}}
	if d, err = deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(d.ManagedFields) != 0 {
		t.Errorf("managedFields %v after a reset, want none", managers(d))
	}
	// Applying to /status of an object that does not exist is a 404, not a create.
	_, err = deps.ApplyStatus(ctx, appsv1ac.Deployment("ghost", "default").WithStatus(appsv1ac.DeploymentStatus().WithReplicas(3)), metav1.ApplyOptions{FieldManager: "controller"})
	if !apierrors.IsNotFound(err) {
		t.Errorf("status apply of a missing object: %v, want NotFound", err)
	}
}

// Kinds client-go has no schema for (wharf.dev's) are merged by a deduced
// schema: maps key by key, so two managers' labels both stay.
func TestServerSideApplyDeducedSchema(t *testing.T) {
	s, c := startService(t)
	a := newAPI(t, s)
	path := "/apis/wharf.dev/v1/namespaces/default/clustertemplates/applied"
	for _, step := range []struct{ manager, label string }{{"a", "one"}, {"b", "two"}} {
		body := fmt.Sprintf("apiVersion: wharf.dev/v1\nkind: ClusterTemplate\nmetadata:\n  name: applied\n  labels: {%s: x}\nspec:\n  coe: kubernetes\n", step.label)
		if code, st, _ := a.do("PATCH", path+"?fieldManager="+step.manager, "application/apply-patch+yaml", []byte(body)); code != 200 && code != 201 {
			t.Fatalf("apply by %s: %d %s", step.manager, code, st.Message)
		}
	}
	tpl, err := c.ClusterTemplates("default").Get(ctxT(t), "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Labels["one"] != "x" || tpl.Labels["two"] != "x" || len(tpl.ManagedFields) != 2 {
		t.Errorf("labels %v and %d managedFields entries, want both labels and 2 entries", tpl.Labels, len(tpl.ManagedFields))
	}
}
