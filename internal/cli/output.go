package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gopkg.in/yaml.v3"
)

// printer writes command results in the format --output asks for: an
// aligned table, or the protobuf message as JSON (proto field names) or YAML.
type printer struct {
	w      io.Writer
	format string
}

func (g *globals) printer(w io.Writer) *printer { return &printer{w: w, format: g.output} }

// structured reports whether the output is json, yaml or id (not a table).
func (p *printer) structured() bool {
	return p.format == "json" || p.format == "yaml" || p.format == "id"
}

// message prints msg as json or yaml; the caller prints tables itself.
func (p *printer) message(msg proto.Message) error {
	switch p.format {
	case "json":
		b, err := marshalJSON(msg)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	case "yaml":
		b, err := marshalYAML(msg)
		if err != nil {
			return err
		}
		_, err = p.w.Write(b)
		return err
	case "id":
		for _, id := range idsOf(msg.ProtoReflect()) {
			if _, err := fmt.Fprintln(p.w, id); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("output format %q does not print messages", p.format)
}

// print prints msg as json or yaml, or calls table for the table format.
func (p *printer) print(msg proto.Message, table func(t *table)) error {
	if p.structured() {
		return p.message(msg)
	}
	t := newTable(p.w)
	table(t)
	return t.flush()
}

// marshalJSON encodes msg with protojson and re-indents it: protojson's
// whitespace is deliberately unstable, and scripts diff our output.
func marshalJSON(msg proto.Message) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return buf.Bytes(), nil
}

// marshalYAML converts the protojson form to YAML, keeping the field order.
func marshalYAML(msg proto.Message) ([]byte, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal(js, &node); err != nil {
		return nil, fmt.Errorf("convert json to yaml: %w", err)
	}
	blockStyle(&node)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

// blockStyle drops the JSON flow and quoting styles so YAML prints in block
// style; the encoder still quotes a string wherever its tag requires.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// table is an aligned, tab-separated table.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)}
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// humanSize formats a byte count with binary units: 512 B, 1.5 KiB, 200 MiB.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("KMGTPE"[exp]) + "iB"
}

// formatTime formats a timestamp as RFC3339 in UTC, or "-" when unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// formatFloat prints a statistic compactly: 4 significant digits, "-" for NaN.
func formatFloat(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortDigest shortens a sha256 for tables.
func shortDigest(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return orDash(s)
}

// joinMap prints a map as sorted k=v pairs separated by commas.
func joinMap[V any](m map[string]V) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, ",")
}
