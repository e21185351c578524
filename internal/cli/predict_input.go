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
	// rows holds JSON rows; header and records hold a CSV.
	rows    [][]float64
	header  []string
	records [][]string
}

// parseRows reads rows as JSON ({"instances": [[...], ...]} or a plain
// array of rows) or as CSV with a header row. name picks the format by
// its extension (.json, .csv); otherwise the first byte decides.
func parseRows(name string, r io.Reader) (*rowsInput, error) {
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
	if len(all) < 2 {
		return nil, fmt.Errorf("%s: want a header row and at least one row of values", name)
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

// matrix returns the rows as a row-major [rows, features] matrix. A CSV's
// columns are picked by name in the order of columns (the model's
// signature); with no names known its columns are taken as they come.
// Empty cells, NA and NaN are missing values.
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
	idx := make([]int, 0, features)
	if len(columns) == 0 {
		if len(in.header) != features {
			return nil, 0, fmt.Errorf("the CSV has %d columns, the model takes %d features", len(in.header), features)
		}
		for i := range in.header {
			idx = append(idx, i)
		}
	} else {
		if len(columns) != features {
			return nil, 0, fmt.Errorf("the signature names %d columns, the model takes %d features", len(columns), features)
		}
		pos := make(map[string]int, len(in.header))
		for i, h := range in.header {
			pos[h] = i
		}
		for _, c := range columns {
			i, ok := pos[c]
			if !ok {
				return nil, 0, fmt.Errorf("column %q of the model's signature is missing from the CSV (the model takes %v)", c, columns)
			}
			idx = append(idx, i)
		}
	}
	x := make([]float64, 0, len(in.records)*features)
	for r, rec := range in.records {
		for k, i := range idx {
			if i >= len(rec) {
				return nil, 0, fmt.Errorf("row %d: %d fields, want at least %d", r+1, len(rec), i+1)
			}
			v, err := parseCell(rec[i])
			if err != nil {
				return nil, 0, fmt.Errorf("row %d, column %q: %v", r+1, in.header[idx[k]], err)
			}
			x = append(x, v)
		}
	}
	return x, len(in.records), nil
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
