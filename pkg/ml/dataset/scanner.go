package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxColumns is the most columns a dataset may have. A dataset's schema
// and per-column statistics are kept in the control plane (etcd, whose
// writes are limited to 1.5 MiB by default) and again in every model
// version trained on it: a numeric column's statistics take about 120
// bytes, a categorical one's up to its 20 most frequent values.
const MaxColumns = 2000

// scanner reads CSV records one at a time, validating the header, the field
// count and the encoding of every row. It holds one record in memory.
type scanner struct {
	r      *csv.Reader
	header []string
	row    int // data rows read so far
	line   int // line where the last record started
}

func newScanner(r io.Reader) (*scanner, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	s := &scanner{r: cr}
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, invalidf(ErrEmpty, "no header row")
	}
	if err != nil {
		return nil, s.convert(err)
	}
	s.line, _ = cr.FieldPos(0)
	if len(rec) > MaxColumns {
		return nil, &ParseError{Row: 0, Line: s.line, ColumnIndex: -1,
			Err: fmt.Errorf("%w: too many columns: %d, at most %d", ErrHeader, len(rec), MaxColumns)}
	}
	header := make([]string, len(rec))
	seen := make(map[string]int, len(rec))
	for i, name := range rec {
		if !utf8.ValidString(name) {
			return nil, &ParseError{Row: 0, Line: s.line, ColumnIndex: i, Err: ErrInvalidUTF8}
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, &ParseError{Row: 0, Line: s.line, ColumnIndex: i, Err: errors.Join(ErrHeader, errors.New("empty column name"))}
		}
		if j := strings.IndexFunc(name, unicode.IsControl); j >= 0 {
			r, _ := utf8.DecodeRuneInString(name[j:])
			return nil, &ParseError{Row: 0, Line: s.line, ColumnIndex: i,
				Err: fmt.Errorf("%w: control character %U in the column name", ErrHeader, r)}
		}
		if j, dup := seen[name]; dup {
			return nil, &ParseError{Row: 0, Line: s.line, Column: name, ColumnIndex: i,
				Err: errors.Join(ErrHeader, errors.New("duplicate column name, first at column "+strconv.Itoa(j+1)))}
		}
		seen[name] = i
		header[i] = name
	}
	s.header = header
	return s, nil
}

// next returns the next data record (valid until the following call) or
// io.EOF.
func (s *scanner) next() ([]string, error) {
	rec, err := s.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, s.convert(err)
	}
	s.row++
	s.line, _ = s.r.FieldPos(0)
	if len(rec) != len(s.header) {
		return nil, &ParseError{Row: s.row, Line: s.line, ColumnIndex: -1,
			Err: errors.Join(ErrRaggedRow, errors.New("got "+strconv.Itoa(len(rec))+", header has "+strconv.Itoa(len(s.header))))}
	}
	for i, f := range rec {
		if !utf8.ValidString(f) {
			return nil, s.errAt(i, ErrInvalidUTF8, "")
		}
	}
	return rec, nil
}

func (s *scanner) errAt(col int, err error, value string) *ParseError {
	return &ParseError{Row: s.row, Line: s.line, Column: s.header[col], ColumnIndex: col, Value: value, Err: err}
}

// convert turns an encoding/csv error into a ParseError naming the row.
func (s *scanner) convert(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		out := &ParseError{Row: s.row + 1, Line: pe.StartLine, ColumnIndex: -1, Err: pe.Err}
		if s.header == nil {
			out.Row = 0
		}
		if pe.Column > 0 && s.header != nil {
			// pe.Column is a 1-based byte offset, not a field index.
			out.Err = errors.Join(pe.Err, errors.New("at byte "+strconv.Itoa(pe.Column)+" of line "+strconv.Itoa(pe.Line)))
		}
		return out
	}
	return err // an I/O error from the underlying reader
}

// IsMissing reports whether a raw CSV value denotes a missing value: empty,
// NA or NaN (case-insensitive, surrounding spaces ignored).
func IsMissing(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || strings.EqualFold(v, "na") || strings.EqualFold(v, "nan")
}

// ParseNumber parses a non-missing raw value as a finite float64; a
// number beyond float64 (1e999) or an infinity is not accepted.
func ParseNumber(v string) (float64, bool) {
	f, err := parseNumber(v)
	return f, err == nil
}

// parseNumber parses a non-missing raw value: ErrNotNumeric for text,
// ErrNotFinite for a number that float64 holds only as ±Inf.
func parseNumber(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	var ne *strconv.NumError
	switch {
	case err != nil && errors.As(err, &ne) && ne.Err == strconv.ErrRange && math.IsInf(f, 0):
		return 0, ErrNotFinite
	case err != nil && errors.As(err, &ne) && ne.Err == strconv.ErrRange:
		return f, nil // an underflow rounds to zero or a denormal: exact enough
	case err != nil:
		return 0, ErrNotNumeric
	case math.IsInf(f, 0):
		return 0, ErrNotFinite
	}
	return f, nil
}
