package dataset

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// wide returns a CSV with n columns and one row.
func wide(n int) string {
	names, vals := make([]string, n), make([]string, n)
	for i := range n {
		names[i], vals[i] = "c"+strconv.Itoa(i), "1"
	}
	return strings.Join(names, ",") + "\n" + strings.Join(vals, ",") + "\n"
}

// Input that cannot be stored or trained on faithfully is refused, naming
// the limit, the column and the row: too many columns, a control character
// in a column name, a number beyond float64 (it would be ±Inf).
func TestReadRefusesWideHeadersControlNamesAndInfinities(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		is       error
		msg      string
	}{
		{"too many columns", wide(2001), ErrHeader, "header (line 1): invalid header: too many columns: 2001, at most 2000"},
		{"nul in a name", "a\x00b,c\n1,2\n", ErrHeader, "header (line 1), column 1: invalid header: control character U+0000 in the column name"},
		{"escape in a name", "a,\x1b[31mred\n1,2\n", ErrHeader, "header (line 1), column 2: invalid header: control character U+001B in the column name"},
		{"tab in a name", "a\tb,c\n1,2\n", ErrHeader, "control character U+0009"},
		{"overflow", "a,b\n1,2\n3,1e999\n", ErrNotFinite, `row 2 (line 3), column "b": not a finite number (beyond ±1.8e308): "1e999"`},
		{"negative overflow", "a,b\n1,-1e400\n", ErrNotFinite, `row 1 (line 2), column "b": not a finite number (beyond ±1.8e308): "-1e400"`},
		{"infinity", "a,b\n1,2\ninf,3\n", ErrNotFinite, `row 2 (line 3), column "a": not a finite number`},
		{"forced numeric", "a\n-Infinity\n", ErrNotFinite, `row 1 (line 2), column "a"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := ReadOptions{}
			if tc.name == "forced numeric" {
				opts.Kinds = map[string]Kind{"a": Numeric}
			}
			_, err := Read(strings.NewReader(tc.in), opts)
			require.ErrorIs(t, err, ErrInvalidCSV)
			require.ErrorIs(t, err, tc.is)
			require.ErrorContains(t, err, tc.msg)
			_, err = Profile(strings.NewReader(tc.in), StatsOptions{Kinds: opts.Kinds})
			require.ErrorIs(t, err, ErrInvalidCSV)
			require.ErrorIs(t, err, tc.is)
			require.ErrorContains(t, err, tc.msg)
		})
	}

	// At the limit, and text that merely looks like a huge number in a
	// categorical column, are fine.
	f, err := Read(strings.NewReader(wide(2000)), ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, 2000, f.NumCols())
	f, err = Read(strings.NewReader("c,n\nx,1\n1e999,2\n"), ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"x", "1e999"}, f.Columns()[0].Levels)
	_, err = Profile(strings.NewReader("c,n\nx,1\n1e999,2\n"), StatsOptions{})
	require.NoError(t, err)
}
