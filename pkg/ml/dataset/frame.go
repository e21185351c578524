package dataset

import (
	"fmt"
	"math"
	"strconv"
)

// Kind is the kind of values a column holds.
type Kind int

const (
	// Infer lets the reader decide: numeric when every non-missing value
	// parses as a number, categorical otherwise.
	Infer Kind = iota
	// Numeric columns hold float64 values, NaN for missing.
	Numeric
	// Categorical columns hold codes into Levels, -1 for missing.
	Categorical
)

func (k Kind) String() string {
	switch k {
	case Numeric:
		return "numeric"
	case Categorical:
		return "categorical"
	default:
		return "infer"
	}
}

// Column is one column of a Frame. Exactly one of Num (Numeric) or Codes
// (Categorical) is populated.
type Column struct {
	Name   string
	Kind   Kind
	Num    []float64
	Codes  []int32
	Levels []string
}

// Len is the number of rows.
func (c *Column) Len() int {
	if c.Kind == Categorical {
		return len(c.Codes)
	}
	return len(c.Num)
}

// IsMissing reports whether row i is missing.
func (c *Column) IsMissing(i int) bool {
	if c.Kind == Categorical {
		return c.Codes[i] < 0
	}
	return math.IsNaN(c.Num[i])
}

// String returns the value of row i as text ("" when missing).
func (c *Column) String(i int) string {
	if c.Kind == Categorical {
		if c.Codes[i] < 0 {
			return ""
		}
		return c.Levels[c.Codes[i]]
	}
	if math.IsNaN(c.Num[i]) {
		return ""
	}
	return strconv.FormatFloat(c.Num[i], 'g', -1, 64)
}

// Frame is a columnar table. Columns have equal lengths.
type Frame struct {
	cols  []*Column
	index map[string]int
	rows  int
}

// NewFrame builds a frame from columns of equal length with unique names.
func NewFrame(cols ...*Column) (*Frame, error) {
	f := &Frame{index: make(map[string]int, len(cols))}
	for i, c := range cols {
		if c.Kind != Numeric && c.Kind != Categorical {
			return nil, fmt.Errorf("column %q: kind %v: %w", c.Name, c.Kind, ErrHeader)
		}
		if _, dup := f.index[c.Name]; dup || c.Name == "" {
			return nil, fmt.Errorf("column %q: empty or duplicate name: %w", c.Name, ErrHeader)
		}
		if i == 0 {
			f.rows = c.Len()
		} else if c.Len() != f.rows {
			return nil, fmt.Errorf("column %q has %d rows, want %d: %w", c.Name, c.Len(), f.rows, ErrRaggedRow)
		}
		if c.Kind == Categorical {
			for r, code := range c.Codes {
				if code >= int32(len(c.Levels)) {
					return nil, fmt.Errorf("column %q row %d: code %d out of range", c.Name, r+1, code)
				}
			}
		}
		f.index[c.Name] = i
		f.cols = append(f.cols, c)
	}
	return f, nil
}

// NumRows is the number of rows.
func (f *Frame) NumRows() int { return f.rows }

// NumCols is the number of columns.
func (f *Frame) NumCols() int { return len(f.cols) }

// Columns returns the columns in order. The slice must not be modified.
func (f *Frame) Columns() []*Column { return f.cols }

// Names returns the column names in order.
func (f *Frame) Names() []string {
	out := make([]string, len(f.cols))
	for i, c := range f.cols {
		out[i] = c.Name
	}
	return out
}

// Col returns the column with the given name.
func (f *Frame) Col(name string) (*Column, error) {
	i, ok := f.index[name]
	if !ok {
		return nil, fmt.Errorf("column %q: %w", name, ErrUnknownColumn)
	}
	return f.cols[i], nil
}

// ColIndex returns the position of a column, or -1.
func (f *Frame) ColIndex(name string) int {
	if i, ok := f.index[name]; ok {
		return i
	}
	return -1
}

// Select returns a frame holding the named columns (sharing storage).
func (f *Frame) Select(names ...string) (*Frame, error) {
	cols := make([]*Column, len(names))
	for i, n := range names {
		c, err := f.Col(n)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return NewFrame(cols...)
}

// Take returns a new frame with the given rows, in that order. Levels are
// shared with f.
func (f *Frame) Take(rows []int) *Frame {
	out := &Frame{index: f.index, rows: len(rows), cols: make([]*Column, len(f.cols))}
	for j, c := range f.cols {
		nc := &Column{Name: c.Name, Kind: c.Kind, Levels: c.Levels}
		if c.Kind == Categorical {
			nc.Codes = make([]int32, len(rows))
			for i, r := range rows {
				nc.Codes[i] = c.Codes[r]
			}
		} else {
			nc.Num = make([]float64, len(rows))
			for i, r := range rows {
				nc.Num[i] = c.Num[r]
			}
		}
		out.cols[j] = nc
	}
	return out
}
