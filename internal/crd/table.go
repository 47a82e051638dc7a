package crd

import (
	"context"
	"sync"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/registry/rest"
)

// table renders a version's objects with upstream's table convertor. A
// convertor's JSONPath evaluators keep state while they run, so each
// goroutine takes one from a pool.
type table struct {
	columns []metav1.TableColumnDefinition
	pool    sync.Pool
}

func newTable(cols []apiextv1.CustomResourceColumnDefinition) (*table, error) {
	cols = defaultColumns(cols)
	c, err := tableconvertor.New(cols)
	if err != nil {
		return nil, err
	}
	t := &table{}
	t.pool.New = func() any {
		c, _ := tableconvertor.New(cols) // parsed once above
		return c
	}
	t.pool.Put(c)
	tab, err := c.ConvertToTable(context.Background(), &unstructured.Unstructured{Object: map[string]any{}}, nil)
	if err != nil {
		return nil, err
	}
	t.columns = tab.ColumnDefinitions
	return t, nil
}

// defaultColumns is upstream's serveDefaultColumnsIfEmpty: without
// printer columns, kubectl shows the age.
func defaultColumns(cols []apiextv1.CustomResourceColumnDefinition) []apiextv1.CustomResourceColumnDefinition {
	if len(cols) > 0 {
		return cols
	}
	return []apiextv1.CustomResourceColumnDefinition{{
		Name:        "Age",
		Type:        "date",
		Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"],
		JSONPath:    ".metadata.creationTimestamp",
	}}
}

// Columns returns the table columns kubectl get prints: Name, then the
// version's additionalPrinterColumns (or Age without any), with their
// types, formats, priorities and descriptions as upstream. The slice is
// shared and read-only.
func (v *Version) Columns() []metav1.TableColumnDefinition { return v.table.columns }

// Row returns obj's cells, one per column: its name, then each column's
// JSONPath evaluated as upstream's table convertor does: strings printed
// as kubectl would, integer and number cells as int64 and float64,
// booleans, and dates as a human-readable age ("5m"); nil when a path
// finds nothing or a value of another type.
func (v *Version) Row(obj *unstructured.Unstructured) []any {
	c := v.table.pool.Get().(rest.TableConvertor)
	defer v.table.pool.Put(c)
	t, err := c.ConvertToTable(context.Background(), obj, &metav1.TableOptions{NoHeaders: true})
	if err != nil || len(t.Rows) != 1 {
		cells := make([]any, len(v.table.columns))
		cells[0] = obj.GetName()
		return cells
	}
	return t.Rows[0].Cells
}
