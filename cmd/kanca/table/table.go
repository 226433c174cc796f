// Package table prints what the admin commands show: lists as aligned
// columns, one record as "name: value" lines, or either as JSON for
// scripts (--json). Every command prints through it, so all tables look
// alike and every --json output is indented the same way.
package table

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Printer writes to W, as JSON when JSON is set.
type Printer struct {
	W    io.Writer
	JSON bool
}

// Field is one "name: value" line of a record.
type Field struct{ Name, Value string }

// F is the field name: value.
func F(name, value string) Field { return Field{Name: name, Value: value} }

// List prints v as JSON, or the header and rows as aligned columns. v is
// what scripts get: pass an empty slice, not nil, so that no rows print
// as [] rather than null.
func (p Printer) List(v any, header []string, rows [][]string) error {
	if p.JSON {
		return PrintJSON(p.W, v)
	}
	return Columns(p.W, header, rows)
}

// Record prints v as JSON, or fields as aligned "name: value" lines.
func (p Printer) Record(v any, fields []Field) error {
	if p.JSON {
		return PrintJSON(p.W, v)
	}
	return Fields(p.W, fields)
}

// Columns writes header and rows as aligned columns.
func Columns(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// Fields writes fields as aligned "name: value" lines.
func Fields(w io.Writer, fields []Field) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.Name, f.Value)
	}
	return tw.Flush()
}

// PrintJSON writes v indented, as every --json output is.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Dash stands in for an empty value, so that columns stay aligned.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// YesNo spells a flag.
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
