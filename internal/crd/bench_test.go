package crd

import (
	"context"
	"fmt"
	"testing"
)

// The lead's benchmark lists 10,000 custom objects and creates them:
// every create runs Prune, Default and Validate, every listed row Row.

func BenchmarkValidate(b *testing.B) {
	v := newV1(b)
	obj := object(b, cronTab) // ~20 fields, two CEL rules on spec, one on spec.replicas
	ctx := context.Background()
	if errs := v.Validate(ctx, obj, nil); len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.Validate(ctx, obj, nil)
	}
}

func BenchmarkValidateUpdate(b *testing.B) {
	v := newV1(b)
	old := object(b, cronTab)
	old.SetResourceVersion("1")
	obj := old.DeepCopy()
	obj.Object["spec"].(map[string]any)["replicas"] = int64(4)
	ctx := context.Background()
	if errs := v.Validate(ctx, obj, old); len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.Validate(ctx, obj, old)
	}
}

func BenchmarkValidateParallel(b *testing.B) {
	v := newV1(b)
	obj := object(b, cronTab)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v.Validate(ctx, obj, nil)
		}
	})
}

// BenchmarkCreatePath is what a create does with a decoded body.
func BenchmarkCreatePath(b *testing.B) {
	v := newV1(b)
	src := object(b, cronTab)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		obj := src.DeepCopy()
		if _, err := v.Prune(obj); err != nil {
			b.Fatal(err)
		}
		v.Default(obj)
		v.PrepareForCreate(obj)
		if errs := v.Validate(ctx, obj, nil); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkPrune(b *testing.B) {
	v := newV1(b)
	src := object(b, cronTab)
	b.ReportAllocs()
	for b.Loop() {
		v.Prune(src)
	}
}

func BenchmarkDefault(b *testing.B) {
	v := newV1(b)
	src := object(b, cronTab)
	b.ReportAllocs()
	for b.Loop() {
		v.Default(src)
	}
}

func BenchmarkRow(b *testing.B) {
	v := newV1(b)
	obj := object(b, cronTab)
	b.ReportAllocs()
	for b.Loop() {
		v.Row(obj)
	}
}

func BenchmarkSelectableFields(b *testing.B) {
	v := newV1(b)
	obj := object(b, cronTab)
	b.ReportAllocs()
	for b.Loop() {
		v.SelectableFields(obj)
	}
}

// BenchmarkNewVersion is the cost of (re)compiling a definition's version.
func BenchmarkNewVersion(b *testing.B) {
	crd := loadCRD(b, "crontab.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewVersion(crd, "v1"); err != nil {
			b.Fatal(fmt.Errorf("NewVersion: %w", err))
		}
	}
}
