package dataset

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// ReadOptions control Read.
type ReadOptions struct {
	// Kinds forces the kind of the named columns; the others are inferred.
	// A value that does not parse in a column forced Numeric is an error
	// naming the row and the column, as is a number beyond float64 (1e999,
	// inf) in any numeric column: it is never stored as ±Inf.
	Kinds map[string]Kind
	// MaxRows stops reading after that many data rows (0: no limit).
	MaxRows int
}

// ReadFile reads a CSV file; see Read.
func ReadFile(path string, opts ReadOptions) (*Frame, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := Read(fh, opts)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, nil
}

// Read streams a CSV (header row, then data rows) into a columnar Frame.
// Numeric columns are stored as float64 and categorical ones as codes, so
// memory grows with rows times columns but not with the text size. A
// column whose kind is inferred starts numeric and turns categorical at its
// first non-numeric value; the earlier values then become levels written
// in Go's shortest float format (force Categorical to keep the text).
func Read(r io.Reader, opts ReadOptions) (*Frame, error) {
	s, err := newScanner(r)
	if err != nil {
		return nil, err
	}
	builders := make([]*colBuilder, len(s.header))
	for i, name := range s.header {
		builders[i] = &colBuilder{name: name, forced: opts.Kinds[name], kind: Numeric}
		if builders[i].forced == Categorical {
			builders[i].toCategorical()
		}
	}
	for name := range opts.Kinds {
		found := false
		for _, h := range s.header {
			found = found || h == name
		}
		if !found {
			return nil, invalidf(ErrUnknownColumn, "column %q is not in the header", name)
		}
	}
	for opts.MaxRows <= 0 || s.row < opts.MaxRows {
		rec, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for i, v := range rec {
			if err := builders[i].add(v); err != nil {
				return nil, s.errAt(i, err, v)
			}
		}
	}
	if s.row == 0 {
		return nil, invalidf(ErrEmpty, "header but no data rows")
	}
	cols := make([]*Column, len(builders))
	for i, b := range builders {
		cols[i] = &Column{Name: b.name, Kind: b.kind, Num: b.num, Codes: b.codes, Levels: b.levels}
	}
	return NewFrame(cols...)
}

type colBuilder struct {
	name   string
	forced Kind
	kind   Kind
	num    []float64
	codes  []int32
	levels []string
	index  map[string]int32
}

// add appends a raw value; it returns ErrNotNumeric for a non-numeric
// value in a column forced numeric and ErrNotFinite for a number beyond
// float64 in a numeric column.
func (b *colBuilder) add(v string) error {
	if b.kind == Numeric {
		if IsMissing(v) {
			b.num = append(b.num, math.NaN())
			return nil
		}
		f, err := parseNumber(v)
		switch {
		case err == nil:
			b.num = append(b.num, f)
			return nil
		case err == ErrNotFinite || b.forced == Numeric:
			return err
		}
		b.toCategorical()
	}
	if IsMissing(v) {
		b.codes = append(b.codes, -1)
		return nil
	}
	v = strings.TrimSpace(v)
	code, ok := b.index[v]
	if !ok {
		code = int32(len(b.levels))
		b.levels = append(b.levels, v)
		b.index[v] = code
	}
	b.codes = append(b.codes, code)
	return nil
}

func (b *colBuilder) toCategorical() {
	b.kind = Categorical
	b.index = make(map[string]int32)
	b.codes = make([]int32, 0, max(len(b.num), 16))
	for _, f := range b.num {
		if math.IsNaN(f) {
			b.codes = append(b.codes, -1)
			continue
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		code, ok := b.index[s]
		if !ok {
			code = int32(len(b.levels))
			b.levels = append(b.levels, s)
			b.index[s] = code
		}
		b.codes = append(b.codes, code)
	}
	b.num = nil
}
