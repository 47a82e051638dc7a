package crd_test

import (
	"context"
	"fmt"
	"os"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"wharf.dev/wharf/internal/crd"
)

// What the API server does with a definition, then with a write of one
// of its objects.
func Example() {
	ctx := context.Background()
	data, _ := os.ReadFile("testdata/crontab.yaml")
	def := &apiextv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, def); err != nil {
		panic(err)
	}

	// A create of the definition: defaults, strategy, validation, status.
	crd.DefaultDefinition(def)
	if err := crd.PrepareDefinition(def, nil); err != nil {
		panic(err)
	}
	if errs := crd.ValidateDefinition(ctx, def); len(errs) > 0 {
		panic(errs.ToAggregate())
	}
	def.Status = crd.Status(def, nil) // the other definitions of the server
	fmt.Println("established:", def.Status.Conditions[1].Type, def.Status.Conditions[1].Status)

	// Serving version v1: compiled once per definition change.
	v, err := crd.NewVersion(def, "v1")
	if err != nil {
		panic(err)
	}

	// A create of an object: decode, prune, default, prepare, validate.
	body, _ := yaml.YAMLToJSON([]byte(`
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: nightly, namespace: default}
spec: {cronSpec: "0 3 * * *", minReplicas: 2, schedule: hourly}
`))
	obj := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(body, &obj.Object); err != nil {
		panic(err)
	}
	unknown, err := v.Prune(obj)
	if err != nil {
		panic(err) // 400 Bad Request
	}
	fmt.Println("unknown fields:", unknown)
	v.Default(obj)
	v.PrepareForCreate(obj)
	for _, e := range v.Validate(ctx, obj, nil) { // 422 Invalid
		fmt.Println(e)
	}
	fmt.Println(v.Row(obj)[:3])
	// Output:
	// established: Established True
	// unknown fields: [spec.schedule]
	// spec: Invalid value: replicas must not be below minReplicas
	// [nightly 0 3 * * * 1]
}
