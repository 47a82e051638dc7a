package cli

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

func testRecords() []record {
	return []record{
		{{"name", "demo"}, {"node_count", int64(2)}, {"addresses", []string{"10.0.0.1", "10.0.0.2"}}, {"labels", map[string]string{"b": "2", "a": "1"}}, {"public", true}},
		{{"name", "ci"}, {"node_count", int64(0)}, {"addresses", []string(nil)}, {"labels", map[string]string(nil)}, {"public", false}},
	}
}

func TestPrintOne(t *testing.T) {
	r := testRecords()[0]
	tests := []struct {
		format  string
		columns []string
		want    string
	}{
		{"table", nil, `+------------+--------------------+
| Field      | Value              |
+------------+--------------------+
| name       | demo               |
| node_count | 2                  |
| addresses  | 10.0.0.1, 10.0.0.2 |
| labels     | a=1, b=2           |
| public     | true               |
+------------+--------------------+
`},
		{"value", []string{"public", "name"}, "true\ndemo\n"},
		{"json", []string{"name", "addresses", "labels"}, `{
  "name": "demo",
  "addresses": [
    "10.0.0.1",
    "10.0.0.2"
  ],
  "labels": {
    "a": "1",
    "b": "2"
  }
}
`},
		{"yaml", []string{"node_count", "labels"}, "node_count: 2\nlabels:\n  a: \"1\"\n  b: \"2\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b strings.Builder
			o := outputFlags{format: tt.format, columns: tt.columns}
			if err := o.printOne(&b, r); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrintList(t *testing.T) {
	cols := []string{"name", "node_count"}
	tests := []struct {
		format  string
		columns []string
		records []record
		want    string
	}{
		{"table", nil, testRecords(), `+------+------------+
| name | node_count |
+------+------------+
| demo | 2          |
| ci   | 0          |
+------+------------+
`},
		{"table", nil, nil, ""},
		{"value", []string{"name", "addresses"}, testRecords(), "demo 10.0.0.1, 10.0.0.2\nci \n"},
		{"json", []string{"name", "addresses", "labels"}, testRecords()[1:], `[
  {
    "name": "ci",
    "addresses": [],
    "labels": {}
  }
]
`},
		{"json", nil, nil, "[]\n"},
		{"yaml", nil, testRecords(), "- name: demo\n  node_count: 2\n- name: ci\n  node_count: 0\n"},
		{"yaml", nil, nil, "[]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b strings.Builder
			o := outputFlags{format: tt.format, columns: tt.columns}
			if err := o.printList(&b, tt.records, cols); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	o := outputFlags{format: "table", columns: []string{"colour"}}
	if err := o.printList(&strings.Builder{}, testRecords(), cols); err == nil || !strings.Contains(err.Error(), `unknown field "colour": use one of name, node_count, addresses, labels, public`) {
		t.Errorf("unknown column: %v", err)
	}
}

// TestFormatCheckedFirst: every command with -f rejects an unknown format
// before it runs, so before it connects to the service.
func TestFormatCheckedFirst(t *testing.T) {
	const want = `unknown format "csv": use one of table, json, yaml, value`
	var walk func(cmd *cobra.Command)
	n := 0
	walk = func(cmd *cobra.Command) {
		if cmd.Flags().Lookup("format") != nil {
			n++
			if err := cmd.Flags().Set("format", "csv"); err != nil {
				t.Fatal(err)
			}
			if cmd.PreRunE == nil {
				t.Errorf("%s: -f is not checked before it runs", cmd.CommandPath())
			} else if err := cmd.PreRunE(cmd, nil); err == nil || err.Error() != want {
				t.Errorf("%s -f csv: %v, want %q", cmd.CommandPath(), err, want)
			}
		}
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(newRoot(Stdio{Out: io.Discard, Err: io.Discard}))
	if n == 0 {
		t.Fatal("no command has -f")
	}

	// No service behind the kubeconfig: the format is the error.
	args := []string{"nodegroup", "show", "demo", "gpu", "-f", "csv", "--service-kubeconfig", filepath.Join(t.TempDir(), "none")}
	if err := Run(context.Background(), args, Stdio{Out: io.Discard, Err: io.Discard}); err == nil || err.Error() != want {
		t.Errorf("%v: %v, want %q", args, err, want)
	}
}

func TestApplyUpdate(t *testing.T) {
	type state struct {
		Count  int32
		Labels map[string]string
		Name   string
	}
	tests := []struct {
		op      string
		items   []string
		start   state
		want    state
		wantErr string
	}{
		{op: "replace", items: []string{"count=3", "name=x"}, want: state{Count: 3, Name: "x"}},
		{op: "add", items: []string{"/labels=a=1,b=2"}, start: state{Labels: map[string]string{"c": "3"}}, want: state{Labels: map[string]string{"a": "1", "b": "2", "c": "3"}}},
		{op: "replace", items: []string{"labels=a=1"}, start: state{Labels: map[string]string{"c": "3"}}, want: state{Labels: map[string]string{"a": "1"}}},
		{op: "add", items: []string{"labels/k=v=w"}, want: state{Labels: map[string]string{"k": "v=w"}}},
		{op: "remove", items: []string{"labels/c", "name"}, start: state{Labels: map[string]string{"c": "3"}, Name: "x"}, want: state{Labels: map[string]string{}}},
		{op: "remove", items: []string{"labels"}, start: state{Labels: map[string]string{"c": "3"}}, want: state{}},
		{op: "remove", items: []string{"count"}, wantErr: "count: cannot be removed"},
		{op: "remove", items: []string{"name=x"}, wantErr: "remove takes attribute names only"},
		{op: "replace", items: []string{"count/x=1"}, wantErr: "count has no keys"},
		{op: "replace", items: []string{"size=1"}, wantErr: `cannot update "size": attributes are count, labels, name`},
		{op: "move", items: []string{"count=1"}, wantErr: `unknown operation "move"`},
		{op: "replace", items: []string{"labels=oops"}, wantErr: `label "oops": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+strings.Join(tt.items, " "), func(t *testing.T) {
			s := tt.start
			err := applyUpdate(tt.op, tt.items, map[string]attr{
				"count":  {set: func(v string) error { return setInt32(&s.Count, v) }},
				"labels": {labels: &s.Labels},
				"name":   {set: func(v string) error { s.Name = v; return nil }, remove: func() { s.Name = "" }},
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, s); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
