package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// rowsInput is what `bmaas predict --input` read: numeric rows, or a CSV
// table whose columns still have to be mapped to the model's signature.
type rowsInput struct {
	// rows holds JSON rows; records hold a CSV's rows of values and
	// header its column names (nil with --no-header).
	rows    [][]float64
	header  []string
	records [][]string
}

// parseRows reads rows as JSON ({"instances": [[...], ...]} or a plain
// array of rows) or as CSV. name picks the format by its extension (.json,
// .csv); otherwise the first byte decides. A CSV's first row is its
// header when header is true; without one every row holds values.
func parseRows(name string, r io.Reader, header bool) (*rowsInput, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	lower := strings.ToLower(name)
	trimmed := bytes.TrimSpace(data)
	isJSON := strings.HasSuffix(lower, ".json") ||
		(!strings.HasSuffix(lower, ".csv") && len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{'))
	if isJSON {
		rows, err := parseJSONRows(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &rowsInput{rows: rows}, nil
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.TrimLeadingSpace = true
	all, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !header {
		if len(all) == 0 {
			return nil, fmt.Errorf("%s: no rows", name)
		}
		return &rowsInput{records: all}, nil
	}
	if len(all) < 2 {
		return nil, fmt.Errorf("%s: want a header row and at least one row of values (--no-header if the file has no header)", name)
	}
	for i, h := range all[0] {
		all[0][i] = strings.TrimSpace(h)
	}
	return &rowsInput{header: all[0], records: all[1:]}, nil
}

// parseJSONRows accepts {"instances": rows} or rows, where rows is an
// array of equally long arrays of numbers (null for a missing value).
func parseJSONRows(data []byte) ([][]float64, error) {
	var raw json.RawMessage = data
	if len(data) > 0 && data[0] == '{' {
		var body struct {
			Instances json.RawMessage `json:"instances"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			return nil, fmt.Errorf("want {\"instances\": [[...], ...]}: %w", err)
		}
		if body.Instances == nil {
			return nil, fmt.Errorf("want {\"instances\": [[...], ...]}: no \"instances\"")
		}
		raw = body.Instances
	}
	var rows [][]*float64
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("want an array of rows of numbers: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no rows")
	}
	out := make([][]float64, len(rows))
	for i, row := range rows {
		if len(row) != len(rows[0]) {
			return nil, fmt.Errorf("row %d has %d values, row 1 has %d", i+1, len(row), len(rows[0]))
		}
		out[i] = make([]float64, len(row))
		for j, v := range row {
			out[i][j] = math.NaN()
			if v != nil {
				out[i][j] = *v
			}
		}
	}
	return out, nil
}

// matrix returns the rows as a row-major [rows, features] matrix, one
// matrix row per input row. A CSV with a header has its columns picked by
// name in the order of columns (the model's signature, or --columns) and
// its other columns ignored; with no names to match, a header of exactly
// features columns is taken in order. A CSV without a header has exactly
// features values per row, taken in order. Empty cells, NA and NaN are
// missing values.
func (in *rowsInput) matrix(columns []string, features int) ([]float64, int, error) {
	if in.rows != nil {
		if len(in.rows[0]) != features {
			return nil, 0, fmt.Errorf("the rows have %d values, the model takes %d features", len(in.rows[0]), features)
		}
		x := make([]float64, 0, len(in.rows)*features)
		for _, r := range in.rows {
			x = append(x, r...)
		}
		return x, len(in.rows), nil
	}
	idx, err := in.columnIndex(columns, features)
	if err != nil {
		return nil, 0, err
	}
	x := make([]float64, 0, len(in.records)*features)
	for r, rec := range in.records {
		for _, i := range idx {
			if i >= len(rec) {
				return nil, 0, fmt.Errorf("row %d: %d fields, want at least %d", r+1, len(rec), i+1)
			}
			v, err := parseCell(rec[i])
			if err != nil {
				return nil, 0, fmt.Errorf("row %d, %s: %v", r+1, in.columnName(i), err)
			}
			x = append(x, v)
		}
	}
	return x, len(in.records), nil
}

// columnIndex says which CSV column feeds each feature.
func (in *rowsInput) columnIndex(columns []string, features int) ([]int, error) {
	inOrder := func(n int) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	if in.header == nil {
		if n := len(in.records[0]); n != features {
			return nil, fmt.Errorf("the rows have %d values, the model takes %d features "+
				"(without a header the columns are taken in order; give the file a header row to pick columns by name)", n, features)
		}
		return inOrder(features), nil
	}
	if len(columns) == 0 {
		switch {
		case looksLikeValues(in.header):
			return nil, fmt.Errorf("the first row (%s) holds values, not column names: pass --no-header if the file has no header row",
				truncate(strings.Join(in.header, ","), 40))
		case len(in.header) != features:
			return nil, fmt.Errorf("the CSV has %d columns and the model takes %d features, and its signature names no columns to pick: "+
				"pass --columns with the %d column names to send, in order", len(in.header), features, features)
		}
		return inOrder(features), nil
	}
	if len(columns) != features {
		return nil, fmt.Errorf("%d columns named, the model takes %d features", len(columns), features)
	}
	pos := make(map[string]int, len(in.header))
	for i, h := range in.header {
		if _, dup := pos[h]; !dup {
			pos[h] = i
		}
	}
	idx := make([]int, 0, features)
	for _, c := range columns {
		i, ok := pos[c]
		if !ok && looksLikeValues(in.header) {
			return nil, fmt.Errorf("the first row (%s) holds values, not the column names the model takes (%s): "+
				"pass --no-header if the file has no header row", truncate(strings.Join(in.header, ","), 40), truncate(strings.Join(columns, ","), 60))
		}
		if !ok {
			return nil, fmt.Errorf("column %q of the model's signature is missing from the CSV (the model takes %v)", c, columns)
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// columnName names a CSV column in an error: by its header, or by its
// position when there is none.
func (in *rowsInput) columnName(i int) string {
	if in.header != nil {
		return fmt.Sprintf("column %q", in.header[i])
	}
	return fmt.Sprintf("column %d", i+1)
}

// looksLikeValues reports whether every cell of a header row is a number:
// a file without a header row read as if it had one.
func looksLikeValues(header []string) bool {
	for _, h := range header {
		if _, err := strconv.ParseFloat(strings.TrimSpace(h), 64); err != nil {
			return false
		}
	}
	return len(header) > 0
}

func parseCell(s string) (float64, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "na", "nan", "null":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}
