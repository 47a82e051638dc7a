package crd

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// cronTab is a valid v1 CronTab after defaulting.
const cronTab = `
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
  namespace: default
  labels: {app: backup}
spec:
  cronSpec: "0 3 * * *"
  image: registry.example.com/backup:1.2
  replicas: 3
  minReplicas: 1
  color: green
  policy: {concurrency: Forbid, suspend: false}
  ports:
  - {name: http, port: 80}
  - {name: metrics, port: 9090}
  tags: [db, nightly, prod]
  owner: ops@example.com
  extra: {team: storage, page: true}
status:
  replicas: 2
  selector: app=backup
  lastRun: "2026-01-02T03:04:05Z"
`

func newV1(t testing.TB) *Version {
	t.Helper()
	v, err := NewVersion(loadCRD(t, "crontab.yaml"), "v1")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// edit returns cronTab with the fields at paths set (nil deletes).
func edit(t testing.TB, changes map[string]any) *unstructured.Unstructured {
	t.Helper()
	o := object(t, cronTab)
	for path, val := range changes {
		p := splitPath(path)
		if val == nil {
			unstructured.RemoveNestedField(o.Object, p...)
			continue
		}
		if err := unstructured.SetNestedField(o.Object, val, p...); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func TestPrune(t *testing.T) {
	v := newV1(t)
	o := object(t, `
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: a, namespace: default, colour: red, labels: {x: "y"}}
spec:
  cronSpec: "* * * * *"
  schedule: hourly
  policy: {suspend: true, retries: 3}
  ports: [{name: a, protocol: TCP}]
  extra: {anything: {goes: [1, 2]}}
  minReplicas: null
  image: null
status: {replicas: 1, phase: Running}
top: level
`)
	pruned, err := v.Prune(o)
	if err != nil {
		t.Fatal(err)
	}
	wantPaths := []string{"metadata.colour", "spec.policy.retries", "spec.ports[0].protocol", "spec.schedule", "status.phase", "top"}
	if diff := cmp.Diff(wantPaths, pruned); diff != "" {
		t.Errorf("pruned paths (-want +got):\n%s", diff)
	}
	want := object(t, `
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: a, namespace: default, labels: {x: "y"}}
spec:
  cronSpec: "* * * * *"
  policy: {suspend: true}
  ports: [{name: a}]
  extra: {anything: {goes: [1, 2]}}
  minReplicas: null
status: {replicas: 1}
`)
	if diff := cmp.Diff(want.Object, o.Object); diff != "" {
		t.Errorf("pruned object (-want +got):\n%s", diff)
	}

	if _, err := v.Prune(object(t, `{apiVersion: stable.example.com/v1, kind: CronTab, metadata: {name: a, labels: 5}}`)); err == nil {
		t.Error("metadata.labels of the wrong type: no error")
	}
}

func TestDefault(t *testing.T) {
	v := newV1(t)
	tests := []struct {
		name, in, want string
	}{
		{
			name: "nested object defaulted from {}",
			in:   `{spec: {cronSpec: "* * * * *"}}`,
			want: `{spec: {cronSpec: "* * * * *", replicas: 1, minReplicas: 0, color: red, policy: {concurrency: Allow, suspend: false}}}`,
		},
		{
			name: "given fields kept, missing nested ones defaulted",
			in:   `{spec: {cronSpec: "* * * * *", replicas: 4, color: blue, policy: {suspend: true}}}`,
			want: `{spec: {cronSpec: "* * * * *", replicas: 4, minReplicas: 0, color: blue, policy: {concurrency: Allow, suspend: true}}}`,
		},
		{
			name: "null replaced by the default",
			in:   `{spec: {replicas: null, policy: null}}`,
			want: `{spec: {replicas: 1, minReplicas: 0, color: red, policy: {concurrency: Allow, suspend: false}}}`,
		},
		{
			name: "no spec: nothing to default",
			in:   `{status: {replicas: 1}}`,
			want: `{status: {replicas: 1}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := object(t, tt.in)
			v.Default(o)
			if diff := cmp.Diff(object(t, tt.want).Object, o.Object); diff != "" {
				t.Errorf("defaulted (-want +got):\n%s", diff)
			}
		})
	}
}

// blocked is upstream's error when schema errors keep CEL rules from running.
var blocked = errorOf{field.ErrorTypeInvalid, "<nil>", "some validation rules were not checked because the object was invalid"}

func TestValidate(t *testing.T) {
	v := newV1(t)
	tests := []struct {
		name string
		obj  map[string]any // changes to cronTab
		old  map[string]any // changes to cronTab for the stored object; nil: create
		want []errorOf
	}{
		{name: "valid"},
		{name: "valid update", obj: map[string]any{"spec.replicas": int64(4)}, old: map[string]any{}},
		{
			name: "enum",
			obj:  map[string]any{"spec.color": "pink"},
			want: []errorOf{{field.ErrorTypeNotSupported, "spec.color", `supported values: "red", "green", "blue"`}, blocked},
		},
		{
			name: "maximum",
			obj:  map[string]any{"spec.replicas": int64(11)},
			want: []errorOf{{field.ErrorTypeInvalid, "spec.replicas", "should be less than or equal to 10"}},
		},
		{
			name: "minimum, and the scale path",
			obj:  map[string]any{"spec.replicas": int64(-1), "spec.minReplicas": int64(-2)},
			want: []errorOf{
				{field.ErrorTypeInvalid, "spec.replicas", "should be greater than or equal to 0"},
				{field.ErrorTypeInvalid, ".spec.replicas", "should be a non-negative integer"},
			},
		},
		{
			name: "pattern and maxLength",
			obj:  map[string]any{"spec.cronSpec": "hourly", "spec.image": "registry.example.com/" + string(make([]byte, 100))},
			want: []errorOf{
				{field.ErrorTypeInvalid, "spec.cronSpec", `should match '^(\S+ ){4}\S+$'`},
				{field.ErrorTypeTooLong, "spec.image", "may not be more than 100 bytes"},
				blocked,
			},
		},
		{
			name: "required",
			obj:  map[string]any{"spec.cronSpec": nil},
			want: []errorOf{{field.ErrorTypeRequired, "spec.cronSpec", ""}, blocked},
		},
		{
			name: "format",
			obj:  map[string]any{"spec.owner": "ops at example", "status.lastRun": "yesterday"},
			want: []errorOf{
				{field.ErrorTypeTypeInvalid, "status.lastRun", "must be of type date-time"},
				{field.ErrorTypeTypeInvalid, "spec.owner", "must be of type email"},
				blocked,
			},
		},
		{
			name: "wrong type",
			obj:  map[string]any{"spec.tags": "db"},
			want: []errorOf{{field.ErrorTypeTypeInvalid, "spec.tags", "must be of type array"}, blocked},
		},
		{
			name: "list-type map and set duplicates",
			obj: map[string]any{
				"spec.ports": []any{map[string]any{"name": "http", "port": int64(80)}, map[string]any{"name": "http", "port": int64(81)}},
				"spec.tags":  []any{"db", "db"},
			},
			want: []errorOf{
				{field.ErrorTypeDuplicate, "spec.ports[1]", ""},
				{field.ErrorTypeDuplicate, "spec.tags[1]", ""},
			},
		},
		{
			name: "CEL rule with a message",
			obj:  map[string]any{"spec.minReplicas": int64(5)},
			want: []errorOf{{field.ErrorTypeInvalid, "spec", "replicas must not be below minReplicas"}},
		},
		{
			name: "CEL rule with a messageExpression",
			obj:  map[string]any{"spec.image": "docker.io/backup"},
			want: []errorOf{{field.ErrorTypeInvalid, "spec", "image docker.io/backup is not from registry.example.com"}},
		},
		{
			name: "transition rule on update",
			obj:  map[string]any{"spec.replicas": int64(2)},
			old:  map[string]any{},
			want: []errorOf{{field.ErrorTypeInvalid, "spec.replicas", "replicas may not decrease"}},
		},
		{
			name: "transition rule not on create",
			obj:  map[string]any{"spec.replicas": int64(2)},
		},
		{
			name: "an invalid value already stored is ratcheted",
			obj:  map[string]any{"spec.owner": "ops at example", "spec.replicas": int64(4)},
			old:  map[string]any{"spec.owner": "ops at example"},
		},
		{
			name: "metadata and type meta",
			obj:  map[string]any{"metadata.name": "Nightly_Job", "metadata.namespace": nil, "kind": "CronJob"},
			want: []errorOf{{field.ErrorTypeInvalid, "kind", "must be CronTab"}},
		},
		{
			name: "metadata",
			obj:  map[string]any{"metadata.name": "Nightly_Job", "metadata.namespace": nil, "metadata.labels": map[string]any{"a b": "c"}},
			want: []errorOf{
				{field.ErrorTypeInvalid, "metadata.name", "a lowercase RFC 1123 subdomain"},
				{field.ErrorTypeRequired, "metadata.namespace", ""},
				{field.ErrorTypeInvalid, "metadata.labels", "name part must consist of alphanumeric characters"},
				blocked,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var old *unstructured.Unstructured
			if tt.old != nil {
				old = edit(t, tt.old)
				old.SetResourceVersion("1")
			}
			obj := edit(t, tt.obj)
			obj.SetResourceVersion("1")
			checkErrors(t, v.Validate(context.Background(), obj, old), tt.want)
		})
	}
}

func TestValidateStatus(t *testing.T) {
	v := newV1(t)
	old := object(t, cronTab)
	old.SetResourceVersion("1")
	tests := []struct {
		name string
		obj  map[string]any
		want []errorOf
	}{
		{name: "valid", obj: map[string]any{"status.replicas": int64(3)}},
		{
			name: "status checked against its schema; spec not checked",
			obj:  map[string]any{"status.replicas": int64(-1), "spec.color": "pink"},
			want: []errorOf{
				{field.ErrorTypeInvalid, "status.replicas", "should be greater than or equal to 0"},
				{field.ErrorTypeInvalid, ".status.replicas", "should be a non-negative integer"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := edit(t, tt.obj)
			obj.SetResourceVersion("1")
			checkErrors(t, v.ValidateStatus(context.Background(), obj, old), tt.want)
		})
	}
}

func TestPrepare(t *testing.T) {
	v := newV1(t)
	obj := object(t, cronTab)
	v.PrepareForCreate(obj)
	if _, ok := obj.Object["status"]; ok || obj.GetGeneration() != 1 {
		t.Errorf("after PrepareForCreate: status %v, generation %d", obj.Object["status"], obj.GetGeneration())
	}

	old := object(t, cronTab)
	old.SetGeneration(4)
	obj = edit(t, map[string]any{"spec.replicas": int64(5), "status.replicas": int64(9)})
	obj.SetGeneration(4)
	v.PrepareForUpdate(obj, old)
	if r, _, _ := unstructured.NestedInt64(obj.Object, "status", "replicas"); r != 2 || obj.GetGeneration() != 5 {
		t.Errorf("after PrepareForUpdate: status.replicas %d (want the stored 2), generation %d (want 5)", r, obj.GetGeneration())
	}

	obj = edit(t, map[string]any{"spec.replicas": int64(5), "status.replicas": int64(9)})
	v.PrepareForStatusUpdate(obj, old)
	spec, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
	status, _, _ := unstructured.NestedInt64(obj.Object, "status", "replicas")
	if spec != 3 || status != 9 {
		t.Errorf("after PrepareForStatusUpdate: spec.replicas %d (want the stored 3), status.replicas %d (want 9)", spec, status)
	}
}

func TestColumnsAndRow(t *testing.T) {
	v := newV1(t)
	var names []string
	for _, c := range v.Columns() {
		names = append(names, c.Name+":"+c.Type)
	}
	if diff := cmp.Diff([]string{"Name:string", "Spec:string", "Replicas:integer", "Last-Run:date", "Image:string"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if c := v.Columns()[4]; c.Priority != 1 || c.Description != "Custom resource definition column (in JSONPath format): .spec.image" {
		t.Errorf("Image column: %+v", c)
	}

	obj := edit(t, map[string]any{"status.lastRun": time.Now().Add(-26 * time.Hour).UTC().Format(time.RFC3339)})
	want := []any{"nightly", "0 3 * * *", int64(3), "26h", "registry.example.com/backup:1.2"}
	if diff := cmp.Diff(want, v.Row(obj)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	missing := edit(t, map[string]any{"spec.image": nil, "status": nil, "spec.replicas": "three"})
	want = []any{"nightly", "0 3 * * *", nil, nil, nil}
	if diff := cmp.Diff(want, v.Row(missing)); diff != "" {
		t.Errorf("row with missing and mistyped values (-want +got):\n%s", diff)
	}

	// The JSONPath evaluators keep state: rows are rendered concurrently
	// when lists are (go test -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				v.Row(obj)
			}
		})
	}
	wg.Wait()

	// Without printer columns: the age, as upstream.
	w, err := NewVersion(widget(t, nil), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if cols := w.Columns(); len(cols) != 2 || cols[1].Name != "Age" || cols[1].Type != "date" {
		t.Errorf("default columns: %+v", cols)
	}
	o := object(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}`)
	o.SetCreationTimestamp(o.GetCreationTimestamp()) // zero: no age
	if got := w.Row(o); len(got) != 2 || got[0] != "w" {
		t.Errorf("default row: %v", got)
	}
}

func TestScale(t *testing.T) {
	v := newV1(t)
	s := v.Scale()
	if s == nil || *s != (ScaleInfo{".spec.replicas", ".status.replicas", ".status.selector"}) {
		t.Fatalf("Scale() = %+v", s)
	}
	obj := object(t, cronTab)
	spec, status, sel, found, err := s.Get(obj)
	if spec != 3 || status != 2 || sel != "app=backup" || !found || err != nil {
		t.Errorf("Get = %d, %d, %q, %v, %v", spec, status, sel, found, err)
	}
	if err := s.SetReplicas(obj, 7); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas"); r != 7 {
		t.Errorf("spec.replicas = %d after SetReplicas(7)", r)
	}
	empty := object(t, `{apiVersion: stable.example.com/v1, kind: CronTab}`)
	if spec, status, _, found, err := s.Get(empty); spec != 0 || status != 0 || found || err != nil {
		t.Errorf("Get of an object without replicas = %d, %d, %v, %v", spec, status, found, err)
	}
	if err := s.SetReplicas(empty, 1); err != nil {
		t.Errorf("SetReplicas on an object without spec: %v", err)
	}
	if _, _, _, _, err := s.Get(edit(t, map[string]any{"spec.replicas": "3"})); err == nil {
		t.Error("Get of a string replicas: no error")
	}
	if !v.HasStatus() {
		t.Error("HasStatus() = false")
	}
	w, err := NewVersion(widget(t, nil), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if w.HasStatus() || w.Scale() != nil {
		t.Error("a version without subresources has status or scale")
	}
}

func TestSelectableFields(t *testing.T) {
	v := newV1(t)
	got, err := v.SelectableFields(object(t, cronTab))
	if err != nil {
		t.Fatal(err)
	}
	want := fields.Set{"metadata.name": "nightly", "metadata.namespace": "default", "spec.color": "green"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	got, _ = v.SelectableFields(edit(t, map[string]any{"spec.color": nil}))
	if c, ok := got["spec.color"]; !ok || c != "" {
		t.Errorf("spec.color of an object without it: %q, %v", c, ok)
	}
}

func TestNewVersionErrors(t *testing.T) {
	if _, err := NewVersion(loadCRD(t, "crontab.yaml"), "v2"); err == nil {
		t.Error("NewVersion of a missing version: no error")
	}
	beta, err := NewVersion(loadCRD(t, "crontab.yaml"), "v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	if gvk := beta.GroupVersionKind(); gvk.String() != "stable.example.com/v1beta1, Kind=CronTab" {
		t.Errorf("GroupVersionKind() = %v", gvk)
	}
	o := object(t, `{apiVersion: stable.example.com/v1beta1, kind: CronTab, metadata: {name: a, namespace: b}, spec: {any: thing}, other: x}`)
	pruned, err := beta.Prune(o)
	if err != nil || !cmp.Equal(pruned, []string{"other"}) {
		t.Errorf("v1beta1 Prune = %v, %v", pruned, err)
	}
	checkErrors(t, beta.Validate(context.Background(), o, nil), nil)
}

// A compiled version serves every request at once (go test -race).
func TestConcurrentUse(t *testing.T) {
	v := newV1(t)
	ctx := context.Background()
	old := object(t, cronTab)
	old.SetResourceVersion("1")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				obj := edit(t, map[string]any{"spec.replicas": int64(3 + (i+j)%2), "spec.unknown": "x"})
				obj.SetResourceVersion("1")
				if _, err := v.Prune(obj); err != nil {
					t.Error(err)
				}
				v.Default(obj)
				if errs := v.Validate(ctx, obj, old); len(errs) > 0 {
					t.Error(errs)
				}
				v.ValidateStatus(ctx, obj, old)
				v.SelectableFields(obj)
				if _, err := v.Schema(); err != nil {
					t.Error(err)
				}
				if _, err := v.TypeConverter().ObjectToTyped(obj); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// A definition stored before v1 may have no schema and keep unknown
// fields: nothing is pruned, defaulted or checked but the metadata.
func TestVersionWithoutSchema(t *testing.T) {
	crd := widget(t, func(c *apiextv1.CustomResourceDefinition) {
		c.Spec.PreserveUnknownFields = true
		c.Spec.Versions[0].Schema = nil
	})
	v, err := NewVersion(crd, "v1")
	if err != nil {
		t.Fatal(err)
	}
	obj := object(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w, colour: red}, spec: {any: [thing]}, other: 1}`)
	pruned, err := v.Prune(obj)
	if err != nil || !cmp.Equal(pruned, []string{"metadata.colour"}) {
		t.Errorf("Prune = %v, %v", pruned, err)
	}
	v.Default(obj)
	if obj.Object["other"] != int64(1) {
		t.Errorf("unknown field dropped: %v", obj.Object)
	}
	checkErrors(t, v.Validate(context.Background(), obj, nil), nil)
	obj.SetName("W")
	checkErrors(t, v.Validate(context.Background(), obj, nil), []errorOf{{field.ErrorTypeInvalid, "metadata.name", "RFC 1123"}})
}
