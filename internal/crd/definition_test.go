package crd

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: widgets, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              names:
                type: array
                items: {type: string}
`

// widget returns the one-version definition above, changed by edit.
func widget(t *testing.T, edit func(crd *apiextv1.CustomResourceDefinition)) *apiextv1.CustomResourceDefinition {
	t.Helper()
	crd := &apiextv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(widgetCRD), crd); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(crd)
	}
	DefaultDefinition(crd)
	if err := PrepareDefinition(crd, nil); err != nil {
		t.Fatal(err)
	}
	return crd
}

// specProps returns the properties of spec in the first version's schema.
func specProps(crd *apiextv1.CustomResourceDefinition) map[string]apiextv1.JSONSchemaProps {
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
}

// setSpec replaces the schema of spec in the first version.
func setSpec(crd *apiextv1.CustomResourceDefinition, s apiextv1.JSONSchemaProps) {
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = s
}

// errorOf is the part of a field.Error a test checks: the message only
// has to contain detail.
type errorOf struct {
	Type   field.ErrorType
	Field  string
	Detail string
}

func errorsOf(errs field.ErrorList) []errorOf {
	var out []errorOf
	for _, e := range errs {
		out = append(out, errorOf{e.Type, e.Field, e.Detail})
	}
	return out
}

// checkErrors compares errs with want in any order (upstream's schema
// validator reports in map order), where each wanted detail needs only
// be contained in the error's.
func checkErrors(t *testing.T, errs field.ErrorList, want []errorOf) {
	t.Helper()
	got := errorsOf(errs)
	byPath := func(a, b errorOf) int {
		return cmp.Compare(a.Field+" "+string(a.Type), b.Field+" "+string(b.Type))
	}
	want = slices.Clone(want)
	slices.SortStableFunc(want, byPath)
	slices.SortStableFunc(got, byPath)
	if len(got) == len(want) {
		for i := range got {
			if strings.Contains(got[i].Detail, want[i].Detail) {
				got[i].Detail = want[i].Detail
			}
		}
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nall: %v", diff, errs)
	}
}

func TestValidateDefinition(t *testing.T) {
	// Upstream converts to its internal types before validating, which
	// hoists a schema shared by all versions to spec.validation: its
	// errors are reported there, as a Kubernetes API server reports them.
	const root = "spec.validation.openAPIV3Schema"
	const spec = root + ".properties[spec]"
	tests := []struct {
		name string
		crd  func(t *testing.T) *apiextv1.CustomResourceDefinition
		want []errorOf
	}{
		{
			name: "valid",
			crd:  func(t *testing.T) *apiextv1.CustomResourceDefinition { return widget(t, nil) },
		},
		{
			name: "two versions, v1 stored and v1beta1 served",
			crd:  func(t *testing.T) *apiextv1.CustomResourceDefinition { return loadCRD(t, "crontab.yaml") },
		},
		{
			name: "name not plural.group",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) { c.Name = "widget.example.com" })
			},
			want: []errorOf{{field.ErrorTypeInvalid, "metadata.name", `must be spec.names.plural+"."+spec.group`}},
		},
		{
			name: "group without a dot",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) { c.Name, c.Spec.Group = "widgets.example", "example" })
			},
			want: []errorOf{{field.ErrorTypeInvalid, "spec.group", "should be a domain with at least one dot"}},
		},
		{
			name: "field without type",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) { specProps(c)["size"] = apiextv1.JSONSchemaProps{} })
			},
			want: []errorOf{{field.ErrorTypeRequired, spec + ".properties[size].type", "must not be empty for specified object fields"}},
		},
		{
			name: "not structural: type in anyOf",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					p := specProps(c)["size"]
					p.AnyOf = []apiextv1.JSONSchemaProps{{Type: "string"}}
					specProps(c)["size"] = p
				})
			},
			want: []errorOf{{field.ErrorTypeForbidden, spec + ".properties[size].anyOf[0].type", "must be empty to be structural"}},
		},
		{
			name: "metadata with more than name and generateName",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["metadata"] = apiextv1.JSONSchemaProps{
						Type:       "object",
						Properties: map[string]apiextv1.JSONSchemaProps{"labels": {Type: "object"}},
					}
				})
			},
			want: []errorOf{{field.ErrorTypeForbidden, root + ".properties[metadata]", "must not specify anything other than name and generateName"}},
		},
		{
			name: "no schema",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) { c.Spec.Versions[0].Schema = nil })
			},
			want: []errorOf{{field.ErrorTypeRequired, "spec.versions[0].schema.openAPIV3Schema", ""}},
		},
		{
			name: "default of the wrong type",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					specProps(c)["size"] = apiextv1.JSONSchemaProps{Type: "integer", Default: &apiextv1.JSON{Raw: []byte(`"big"`)}}
				})
			},
			want: []errorOf{{field.ErrorTypeTypeInvalid, spec + ".properties[size].default", `must be of type integer`}},
		},
		{
			name: "CEL rule that does not compile",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					s := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
					s.XValidations = apiextv1.ValidationRules{{Rule: "self.size >"}, {Rule: "self.colour == 'red'"}}
					setSpec(c, s)
				})
			},
			want: []errorOf{
				{field.ErrorTypeInvalid, spec + ".x-kubernetes-validations[0].rule", "compilation failed"},
				{field.ErrorTypeInvalid, spec + ".x-kubernetes-validations[1].rule", "undefined field 'colour'"},
			},
		},
		{
			name: "CEL rule over the cost budget",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					s := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
					s.XValidations = apiextv1.ValidationRules{{Rule: "self.names.all(a, self.names.all(b, self.names.all(c, a + b + c != '')))"}}
					setSpec(c, s)
				})
			},
			want: []errorOf{
				{field.ErrorTypeForbidden, spec + ".x-kubernetes-validations[0].rule", "estimated rule cost exceeds budget"},
				{field.ErrorTypeForbidden, spec + ".x-kubernetes-validations[0].rule", "contributed to estimated rule cost total exceeding cost limit"},
				{field.ErrorTypeForbidden, root, "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget"},
			},
		},
		{
			name: "two storage versions",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					v2 := *c.Spec.Versions[0].DeepCopy()
					v2.Name = "v2"
					c.Spec.Versions = append(c.Spec.Versions, v2)
				})
			},
			want: []errorOf{
				{field.ErrorTypeInvalid, "spec.versions", "must have exactly one version marked as storage version"},
				{field.ErrorTypeInvalid, "status.storedVersions", "must have the storage version v2"},
			},
		},
		{
			name: "bad printer column",
			crd: func(t *testing.T) *apiextv1.CustomResourceDefinition {
				return widget(t, func(c *apiextv1.CustomResourceDefinition) {
					c.Spec.Versions[0].AdditionalPrinterColumns = []apiextv1.CustomResourceColumnDefinition{{Name: "Size", Type: "int", JSONPath: "spec.size"}}
				})
			},
			want: []errorOf{
				{field.ErrorTypeInvalid, "spec.additionalPrinterColumns[0].type", "must be one of boolean,date,integer,number,string"},
				{field.ErrorTypeInvalid, "spec.additionalPrinterColumns[0].JSONPath", "must be a simple json path starting with ."},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, ValidateDefinition(context.Background(), tt.crd(t)), tt.want)
		})
	}
}

func TestValidateDefinitionUpdate(t *testing.T) {
	old := loadCRD(t, "crontab.yaml")
	old.Status = Status(old, nil)
	old.ResourceVersion = "5"
	tests := []struct {
		name string
		edit func(crd *apiextv1.CustomResourceDefinition)
		want []errorOf
	}{
		{name: "unchanged", edit: func(*apiextv1.CustomResourceDefinition) {}},
		{
			name: "new version",
			edit: func(c *apiextv1.CustomResourceDefinition) {
				v := *c.Spec.Versions[1].DeepCopy()
				v.Name = "v2"
				c.Spec.Versions = append(c.Spec.Versions, v)
			},
		},
		{
			name: "scope and group changed",
			edit: func(c *apiextv1.CustomResourceDefinition) { c.Spec.Scope = apiextv1.ClusterScoped },
			want: []errorOf{{field.ErrorTypeInvalid, "spec.scope", "field is immutable"}},
		},
		{
			name: "stored version removed",
			edit: func(c *apiextv1.CustomResourceDefinition) {
				c.Spec.Versions = c.Spec.Versions[1:]
				c.Spec.Versions[0].Storage = true
			},
			want: []errorOf{{field.ErrorTypeInvalid, "status.storedVersions[0]", "missing from spec.versions"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crd := old.DeepCopy()
			tt.edit(crd)
			if err := PrepareDefinition(crd, old); err != nil {
				t.Fatal(err)
			}
			checkErrors(t, ValidateDefinitionUpdate(context.Background(), crd, old), tt.want)
		})
	}
}

func TestDefaultAndPrepareDefinition(t *testing.T) {
	crd := &apiextv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(widgetCRD), crd); err != nil {
		t.Fatal(err)
	}
	crd.Status.StoredVersions = []string{"v0"}
	crd.Generation = 7
	DefaultDefinition(crd)
	if err := PrepareDefinition(crd, nil); err != nil {
		t.Fatal(err)
	}
	got := struct {
		Names      apiextv1.CustomResourceDefinitionNames
		Conversion *apiextv1.CustomResourceConversion
		Status     apiextv1.CustomResourceDefinitionStatus
		Generation int64
	}{crd.Spec.Names, crd.Spec.Conversion, crd.Status, crd.Generation}
	want := got
	want.Names = apiextv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"}
	want.Conversion = &apiextv1.CustomResourceConversion{Strategy: apiextv1.NoneConverter}
	want.Status = apiextv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}}
	want.Generation = 1
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted and prepared (-want +got):\n%s", diff)
	}

	// An update keeps the status and bumps generation for a spec change.
	upd := crd.DeepCopy()
	upd.Status = apiextv1.CustomResourceDefinitionStatus{}
	upd.Spec.Versions[0].Deprecated = true
	if err := PrepareDefinition(upd, crd); err != nil {
		t.Fatal(err)
	}
	if upd.Generation != 2 || !gocmp.Equal(upd.Status, crd.Status) {
		t.Errorf("after update: generation %d, status %+v", upd.Generation, upd.Status)
	}
}

func TestDefinitionWarnings(t *testing.T) {
	crd := widget(t, func(c *apiextv1.CustomResourceDefinition) {
		specProps(c)["size"] = apiextv1.JSONSchemaProps{Type: "string", Format: "colour"}
	})
	got := DefinitionWarnings(context.Background(), crd, nil)
	if diff := gocmp.Diff([]string{`unrecognized format "colour"`}, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got := DefinitionWarnings(context.Background(), crd, crd); len(got) != 0 {
		t.Errorf("warnings on an unchanged update: %q", got)
	}
}

func TestValidateDefinitionStatus(t *testing.T) {
	crd := loadCRD(t, "crontab.yaml")
	crd.ResourceVersion = "5"
	upd := crd.DeepCopy()
	upd.Status.Conditions = []apiextv1.CustomResourceDefinitionCondition{{Type: apiextv1.Established, Status: "Maybe", LastTransitionTime: metav1.Now()}}
	upd.Status.AcceptedNames.Plural = "Bad Name"
	checkErrors(t, ValidateDefinitionStatus(context.Background(), upd, crd), []errorOf{
		{field.ErrorTypeInvalid, "status.acceptedNames.plural", ""},
	})
}
