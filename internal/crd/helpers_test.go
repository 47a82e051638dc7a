package crd

import (
	"os"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// loadCRD reads a definition from testdata, defaulted and prepared for
// creation as the server would before validating it.
func loadCRD(t testing.TB, file string) *apiextv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	DefaultDefinition(crd)
	if err := PrepareDefinition(crd, nil); err != nil {
		t.Fatal(err)
	}
	return crd
}

// object parses a YAML custom object as the server decodes a body:
// integers are int64, other numbers float64.
func object(t testing.TB, y string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("%v in\n%s", err, y)
	}
	u := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%v in\n%s", err, y)
	}
	return u
}
