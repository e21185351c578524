package dataset

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error caused by bad input matches ErrInvalidCSV
// (errors.Is), so a caller can map the whole family to InvalidArgument;
// the more specific sentinels below match as well.
var (
	// ErrInvalidCSV is the family of all input errors.
	ErrInvalidCSV = errors.New("invalid csv")
	// ErrEmpty: no header row, or a header but no data rows.
	ErrEmpty = errors.New("empty dataset")
	// ErrRaggedRow: a row whose field count differs from the header's.
	ErrRaggedRow = errors.New("wrong number of fields")
	// ErrInvalidUTF8: a field that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid utf-8")
	// ErrNotNumeric: a value that does not parse as a number in a column
	// that must be numeric.
	ErrNotNumeric = errors.New("not a number")
	// ErrNotFinite: a number beyond float64 (it would be ±Inf) or an
	// infinity, in a numeric column.
	ErrNotFinite = errors.New("not a finite number (beyond ±1.8e308)")
	// ErrHeader: an empty, duplicated or unprintable column name, or more
	// than MaxColumns columns.
	ErrHeader = errors.New("invalid header")
	// ErrUnknownColumn: a column named in the options is not in the header.
	ErrUnknownColumn = errors.New("unknown column")
)

// ParseError locates an input error. Row is the 1-based data row (the
// header is row 0) and Line the 1-based line of the file where the record
// starts. Column is the column name when known, ColumnIndex its 0-based
// position (-1 when the error concerns the whole row).
type ParseError struct {
	Row         int
	Line        int
	Column      string
	ColumnIndex int
	Value       string
	Err         error
}

func (e *ParseError) Error() string {
	loc := fmt.Sprintf("row %d (line %d)", e.Row, e.Line)
	if e.Row == 0 {
		loc = fmt.Sprintf("header (line %d)", e.Line)
	}
	if e.ColumnIndex >= 0 {
		if e.Column != "" {
			loc += fmt.Sprintf(", column %q", e.Column)
		} else {
			loc += fmt.Sprintf(", column %d", e.ColumnIndex+1)
		}
	}
	if e.Value != "" {
		return fmt.Sprintf("%s: %v: %q", loc, e.Err, truncate(e.Value, 64))
	}
	return fmt.Sprintf("%s: %v", loc, e.Err)
}

// Unwrap returns the specific cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Is makes every ParseError match ErrInvalidCSV.
func (e *ParseError) Is(target error) bool { return target == ErrInvalidCSV }

// invalid wraps a row-less input error so that it matches ErrInvalidCSV.
type invalid struct{ err error }

func (e *invalid) Error() string        { return e.err.Error() }
func (e *invalid) Unwrap() error        { return e.err }
func (e *invalid) Is(target error) bool { return target == ErrInvalidCSV }

func invalidf(sentinel error, format string, args ...any) error {
	return &invalid{err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
