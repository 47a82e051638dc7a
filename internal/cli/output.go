package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// The cluster service's commands print objects the way `openstack coe`
// does: a record of fields with Magnum's names, shown as a table (Field |
// Value for one object, a column per field for lists), JSON, YAML or bare
// values (-f value -c status, for scripts).

// field is one named value: string, int64, bool, []string or map[string]string.
type field struct {
	name  string
	value any
}

// record is an object as the CLI shows it, fields in display order.
type record []field

func (r record) get(name string) (any, bool) {
	for _, f := range r {
		if f.name == name {
			return f.value, true
		}
	}
	return nil, false
}

func (r record) names() []string {
	out := make([]string, len(r))
	for i, f := range r {
		out[i] = f.name
	}
	return out
}

var formats = []string{"table", "json", "yaml", "value"}

// outputFlags are -f/--format and -c/--column.
type outputFlags struct {
	format  string
	columns []string
}

// register adds -f and -c to cmd and has cmd check -f before it runs
// (as its PreRunE), so a bad format fails before the command connects to
// anything.
func (o *outputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "format", "f", "table", "output format: table, json, yaml or value")
	cmd.Flags().StringArrayVarP(&o.columns, "column", "c", nil, "show only this field (repeatable), e.g. -c status -c api_address")
	cmd.PreRunE = func(*cobra.Command, []string) error { return o.check() }
}

// check fails on a format that is not one of formats.
func (o *outputFlags) check() error {
	if !slices.Contains(formats, o.format) {
		return fmt.Errorf("unknown format %q: use one of %s", o.format, strings.Join(formats, ", "))
	}
	return nil
}

// pick returns r's fields named by o.columns (all of want when none).
func (o *outputFlags) pick(r record, want []string) (record, error) {
	if len(o.columns) > 0 {
		want = o.columns
	}
	out := make(record, 0, len(want))
	for _, name := range want {
		v, ok := r.get(name)
		if !ok {
			return nil, fmt.Errorf("unknown field %q: use one of %s", name, strings.Join(r.names(), ", "))
		}
		out = append(out, field{name, v})
	}
	return out, nil
}

// printOne prints one object: a Field | Value table, an object, or one
// value a line.
func (o *outputFlags) printOne(w io.Writer, r record) error {
	r, err := o.pick(r, r.names())
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		return writeJSONRecords(w, []record{r}, false)
	case "yaml":
		return writeYAMLRecord(w, r, "")
	case "value":
		for _, f := range r {
			fmt.Fprintln(w, cellText(f.value))
		}
		return nil
	}
	rows := make([][]string, len(r))
	for i, f := range r {
		rows[i] = []string{f.name, cellText(f.value)}
	}
	writeTable(w, []string{"Field", "Value"}, rows)
	return nil
}

// printList prints objects, with the columns cols unless -c says others.
func (o *outputFlags) printList(w io.Writer, rs []record, cols []string) error {
	picked := make([]record, len(rs))
	for i, r := range rs {
		p, err := o.pick(r, cols)
		if err != nil {
			return err
		}
		picked[i] = p
	}
	if len(o.columns) > 0 {
		cols = o.columns
	}
	switch o.format {
	case "json":
		return writeJSONRecords(w, picked, true)
	case "yaml":
		if len(picked) == 0 {
			fmt.Fprintln(w, "[]")
		}
		for _, r := range picked {
			if err := writeYAMLRecord(w, r, "- "); err != nil {
				return err
			}
		}
		return nil
	case "value":
		for _, r := range picked {
			cells := make([]string, len(r))
			for i, f := range r {
				cells[i] = cellText(f.value)
			}
			fmt.Fprintln(w, strings.Join(cells, " "))
		}
		return nil
	}
	if len(picked) == 0 {
		return nil
	}
	rows := make([][]string, len(picked))
	for i, r := range picked {
		rows[i] = make([]string, len(r))
		for j, f := range r {
			rows[i][j] = cellText(f.value)
		}
	}
	writeTable(w, cols, rows)
	return nil
}

// cellText renders a value for a table or -f value: lists and maps on one line.
func cellText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []string:
		return strings.Join(v, ", ")
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + v[k]
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// jsonValue makes empty lists and maps [] and {} rather than null.
func jsonValue(v any) any {
	switch v := v.(type) {
	case []string:
		if v == nil {
			return []string{}
		}
	case map[string]string:
		if v == nil {
			return map[string]string{}
		}
	}
	return v
}

// writeJSONRecords writes objects with their fields in order (a map
// would sort them), as an array when list.
func writeJSONRecords(w io.Writer, rs []record, list bool) error {
	var b strings.Builder
	indent := ""
	if list {
		b.WriteString("[")
		indent = "  "
	}
	for i, r := range rs {
		if list {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n" + indent)
		}
		b.WriteString("{")
		for j, f := range r {
			k, _ := json.Marshal(f.name)
			v, err := json.MarshalIndent(jsonValue(f.value), indent+"  ", "  ")
			if err != nil {
				return fmt.Errorf("field %s: %w", f.name, err)
			}
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n%s  %s: %s", indent, k, v)
		}
		b.WriteString("\n" + indent + "}")
	}
	if list {
		if len(rs) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("]")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeYAMLRecord writes one object as a mapping in field order; prefix
// "- " makes it an item of a sequence.
func writeYAMLRecord(w io.Writer, r record, prefix string) error {
	var b strings.Builder
	for _, f := range r {
		data, err := yaml.Marshal(map[string]any{f.name: jsonValue(f.value)})
		if err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
		b.Write(data)
	}
	text := strings.TrimRight(b.String(), "\n")
	if text == "" {
		text = "{}"
	}
	if prefix != "" {
		lines := strings.Split(text, "\n")
		for i := range lines {
			if i == 0 {
				lines[i] = prefix + lines[i]
			} else {
				lines[i] = strings.Repeat(" ", len(prefix)) + lines[i]
			}
		}
		text = strings.Join(lines, "\n")
	}
	_, err := io.WriteString(w, text+"\n")
	return err
}

// writeTable draws openstack's bordered table.
func writeTable(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	rule := func() {
		b.WriteString("+")
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2) + "+")
		}
		b.WriteString("\n")
	}
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	rule()
	line(header)
	rule()
	for _, row := range rows {
		line(row)
	}
	rule()
	io.WriteString(w, b.String())
}
