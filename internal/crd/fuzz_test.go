package crd

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// FuzzValidate feeds arbitrary JSON objects through what a write does
// with them, against the CronTab schema: nothing may panic.
func FuzzValidate(f *testing.F) {
	seed, err := yaml.YAMLToJSON([]byte(cronTab))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(seed),
		`{}`,
		`{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"a","namespace":"b"},"spec":null}`,
		`{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"a","labels":{"a":1}},"spec":{"ports":[null,{"name":null}],"tags":[1,[2]]}}`,
		`{"metadata":[],"spec":{"replicas":1e400,"policy":"x","extra":{"x":{"y":null}}},"status":{"replicas":-1.5}}`,
		`{"spec":{"replicas":9223372036854775807,"minReplicas":-9223372036854775808,"cronSpec":"\u0000 a b c d"}}`,
	} {
		f.Add([]byte(s))
	}
	v := newV1(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		var content map[string]any
		if err := utiljson.Unmarshal(data, &content); err != nil || content == nil {
			return
		}
		obj := &unstructured.Unstructured{Object: content}
		old := obj.DeepCopy()
		if _, err := v.Prune(obj); err != nil {
			return // a decoding error for the client
		}
		v.Default(obj)
		v.Validate(ctx, obj, nil)
		v.Validate(ctx, obj, old)
		v.ValidateStatus(ctx, obj, old)
		v.Warnings(ctx, obj, old)
		v.Row(obj)
		v.SelectableFields(obj)
		v.Scale().Get(obj)
		v.PrepareForCreate(obj.DeepCopy())
		v.PrepareForUpdate(obj.DeepCopy(), old)
		v.PrepareForStatusUpdate(obj.DeepCopy(), old)
		v.TypeConverter().ObjectToTyped(obj)
	})
}
