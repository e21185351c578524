package dataset

import (
	"io"
	"strings"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

// numericDictCap bounds the raw values remembered for a column that is
// numeric so far, in case a later value turns it categorical.
const numericDictCap = 1024

// Profile reads a CSV stream once and returns its schema and per-column
// statistics (count, missing, mean, std, min, max, histogram; the most
// frequent values and the number of distinct values of categorical
// columns). It never holds the rows: memory is bounded by the number of
// columns and of distinct categories. Kinds are inferred as in Read unless
// forced by opts.Kinds.
//
// It rejects, with an error matching ErrInvalidCSV and naming the row (and
// the column when relevant): a stream without a header (ErrEmpty), a
// header without rows (ErrEmpty), a ragged row (ErrRaggedRow), invalid
// UTF-8 (ErrInvalidUTF8), malformed quoting, a header of more than
// MaxColumns columns or with a control character in a name (ErrHeader), a
// non-numeric value in a column forced Numeric (ErrNotNumeric) and a number
// beyond float64 in a numeric column (ErrNotFinite). Errors of r are
// returned as is.
func Profile(r io.Reader, opts StatsOptions) (*commonv1.DatasetStats, error) {
	opts = opts.withDefaults()
	s, err := newScanner(r)
	if err != nil {
		return nil, err
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
	accs := make([]*profileAcc, len(s.header))
	for i, name := range s.header {
		accs[i] = &profileAcc{forced: opts.Kinds[name], num: newNumAcc(opts.HistogramBins), cats: map[string]int64{}}
		if accs[i].forced == Categorical {
			accs[i].categorical = true
		}
	}
	for {
		rec, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for i, v := range rec {
			if err := accs[i].add(v, opts.MaxCategories); err != nil {
				return nil, s.errAt(i, err, v)
			}
		}
	}
	if s.row == 0 {
		return nil, invalidf(ErrEmpty, "header but no data rows")
	}
	ds := &commonv1.DatasetStats{Rows: int64(s.row)}
	for i, a := range accs {
		if a.categorical {
			ds.Columns = append(ds.Columns, categoricalStats(s.header[i], a.cats, a.nonMissing, a.missing, opts.TopCategories))
		} else {
			ds.Columns = append(ds.Columns, a.num.stats(s.header[i]))
		}
	}
	return ds, nil
}

type profileAcc struct {
	forced      Kind
	categorical bool
	num         *numAcc
	cats        map[string]int64 // nil once a numeric column overflows numericDictCap
	missing     int64            // categorical only
	nonMissing  int64
}

// add counts a raw value; errors as colBuilder.add.
func (a *profileAcc) add(v string, maxCats int) error {
	if !a.categorical {
		if IsMissing(v) {
			a.num.add(nan)
			return nil
		}
		f, err := parseNumber(v)
		switch {
		case err == nil:
			a.nonMissing++
			a.num.add(f)
			a.count(strings.TrimSpace(v), numericDictCap)
			return nil
		case err == ErrNotFinite || a.forced == Numeric:
			return err
		}
		a.categorical = true
		a.missing = a.num.missing
		if a.cats == nil {
			a.cats = map[string]int64{}
		}
	}
	if IsMissing(v) {
		a.missing++
		return nil
	}
	a.nonMissing++
	a.count(strings.TrimSpace(v), maxCats)
	return nil
}

func (a *profileAcc) count(v string, limit int) {
	if a.cats == nil {
		return
	}
	if n, ok := a.cats[v]; ok {
		a.cats[v] = n + 1
		return
	}
	if len(a.cats) >= limit {
		if !a.categorical {
			a.cats = nil // a numeric column with many values: stop tracking
		}
		return
	}
	a.cats[v] = 1
}
