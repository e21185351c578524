package dataset

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const datasets = "../../../examples/datasets/"

func TestReadIris(t *testing.T) {
	t.Parallel()
	f, err := ReadFile(datasets+"iris.csv", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, 150, f.NumRows())
	require.Equal(t, []string{"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm", "target"}, f.Names())
	c, err := f.Col("sepal_length_cm")
	require.NoError(t, err)
	require.Equal(t, Numeric, c.Kind)
	require.InDelta(t, 5.1, c.Num[0], 0)
	_, err = f.Col("nope")
	require.ErrorIs(t, err, ErrUnknownColumn)
}

func TestReadKindsAndMissing(t *testing.T) {
	t.Parallel()
	in := "a,b,c\n1,x, NA\n2,,3.5\nNaN,y,\n"
	f, err := Read(strings.NewReader(in), ReadOptions{})
	require.NoError(t, err)
	a, b, c := f.Columns()[0], f.Columns()[1], f.Columns()[2]
	require.Equal(t, Numeric, a.Kind)
	require.True(t, a.IsMissing(2))
	require.Equal(t, Categorical, b.Kind)
	require.Equal(t, []string{"x", "y"}, b.Levels)
	require.Equal(t, []int32{0, -1, 1}, b.Codes)
	require.Equal(t, Numeric, c.Kind)
	require.True(t, math.IsNaN(c.Num[0]) && math.IsNaN(c.Num[2]))
	require.Equal(t, 3.5, c.Num[1])

	// A column turning categorical keeps earlier values as levels.
	f, err = Read(strings.NewReader("z\n1\n2.50\nabc\n\n1\n"), ReadOptions{})
	require.NoError(t, err)
	z := f.Columns()[0]
	require.Equal(t, Categorical, z.Kind)
	require.Equal(t, []string{"1", "2.5", "abc"}, z.Levels)
	require.Equal(t, []int32{0, 1, 2, 0}, z.Codes)

	// Forced kinds.
	f, err = Read(strings.NewReader("z\n01\n2\n"), ReadOptions{Kinds: map[string]Kind{"z": Categorical}})
	require.NoError(t, err)
	require.Equal(t, []string{"01", "2"}, f.Columns()[0].Levels)
}

func TestReadErrorsNameRowAndColumn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		opts     ReadOptions
		is       error
		msg      string
	}{
		{"no header", "", ReadOptions{}, ErrEmpty, "no header"},
		{"no rows", "a,b\n", ReadOptions{}, ErrEmpty, "no data rows"},
		{"ragged", "a,b\n1,2\n3\n", ReadOptions{}, ErrRaggedRow, "row 2 (line 3)"},
		{"utf8", "a,b\n1,2\n3,\xff\n", ReadOptions{}, ErrInvalidUTF8, `row 2 (line 3), column "b"`},
		{"utf8 header", "a,\xff\n1,2\n", ReadOptions{}, ErrInvalidUTF8, "header"},
		{"dup header", "a,a\n1,2\n", ReadOptions{}, ErrHeader, "duplicate"},
		{"empty name", "a,\n1,2\n", ReadOptions{}, ErrHeader, "empty column name"},
		{"not numeric", "a,b\n1,2\n3,x\n", ReadOptions{Kinds: map[string]Kind{"b": Numeric}}, ErrNotNumeric, `row 2 (line 3), column "b": not a number: "x"`},
		{"bad quote", "a,b\n1,\"2\n", ReadOptions{}, ErrInvalidCSV, "row 1"},
		{"unknown kind col", "a\n1\n", ReadOptions{Kinds: map[string]Kind{"q": Numeric}}, ErrUnknownColumn, "q"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in), tc.opts)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalidCSV)
			require.ErrorIs(t, err, tc.is)
			require.Contains(t, err.Error(), tc.msg)
			_, err = Profile(strings.NewReader(tc.in), StatsOptions{Kinds: tc.opts.Kinds})
			require.ErrorIs(t, err, ErrInvalidCSV)
			require.ErrorIs(t, err, tc.is)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestProfileMatchesFrameStats(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"iris.csv", "breast_cancer.csv", "diabetes.csv", "digits.csv", "wine.csv"} {
		raw, err := os.ReadFile(datasets + name)
		require.NoError(t, err)
		ps, err := Profile(bytes.NewReader(raw), StatsOptions{})
		require.NoError(t, err)
		f, err := Read(bytes.NewReader(raw), ReadOptions{})
		require.NoError(t, err)
		fs := f.Stats(StatsOptions{})
		require.Equal(t, fs.String(), ps.String(), name)
		require.EqualValues(t, f.NumRows(), ps.Rows)
		for j, cs := range ps.Columns {
			col := f.Columns()[j]
			var sum, n float64
			for _, x := range col.Num {
				sum += x
				n++
			}
			require.InDelta(t, sum/n, cs.Mean, 1e-9*math.Max(1, math.Abs(cs.Mean)), "%s %s", name, cs.Name)
			checkHistogram(t, col.Num, cs.Histogram.Edges, cs.Histogram.Counts)
		}
	}
}

func TestProfileCategorical(t *testing.T) {
	t.Parallel()
	in := "color,size,n\nred,1,1\nblue,2,\nred,x,3\nNA,4,4\ngreen,,5\n"
	ps, err := Profile(strings.NewReader(in), StatsOptions{TopCategories: 2})
	require.NoError(t, err)
	require.EqualValues(t, 5, ps.Rows)
	c := ps.Columns[0]
	require.Equal(t, "VALUE_KIND_CATEGORICAL", c.Kind.String())
	require.EqualValues(t, 4, c.Count)
	require.EqualValues(t, 1, c.Missing)
	require.EqualValues(t, 3, c.Distinct)
	require.Len(t, c.TopCategories, 2)
	require.Equal(t, "red", c.TopCategories[0].Value)
	require.EqualValues(t, 2, c.TopCategories[0].Count)
	require.Equal(t, "blue", c.TopCategories[1].Value)
	size := ps.Columns[1] // flips to categorical at "x"
	require.Equal(t, "VALUE_KIND_CATEGORICAL", size.Kind.String())
	require.EqualValues(t, 4, size.Count)
	require.EqualValues(t, 1, size.Missing)
	require.EqualValues(t, 4, size.Distinct)
	n := ps.Columns[2]
	require.EqualValues(t, 4, n.Count)
	require.EqualValues(t, 1, n.Missing)
	require.InDelta(t, 13.0/4, n.Mean, 1e-12)
	require.Equal(t, 1.0, n.Min)
	require.Equal(t, 5.0, n.Max)
	require.InDelta(t, math.Sqrt((sq(1-3.25)+sq(3-3.25)+sq(4-3.25)+sq(5-3.25))/3), n.Std, 1e-12)
}

func sq(x float64) float64 { return x * x }

// errReader fails after its data.
type errReader struct{ r *strings.Reader }

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		return n, errors.New("disk on fire")
	}
	return n, nil
}

func TestProfileReaderError(t *testing.T) {
	t.Parallel()
	_, err := Profile(errReader{strings.NewReader("a\n1\n")}, StatsOptions{})
	require.EqualError(t, err, "disk on fire")
	require.NotErrorIs(t, err, ErrInvalidCSV)
}

func TestProfileBOMAndQuotes(t *testing.T) {
	t.Parallel()
	ps, err := Profile(strings.NewReader("\xEF\xBB\xBFname,v\n\"a, b\",1\n\"multi\nline\",2\n"), StatsOptions{})
	require.NoError(t, err)
	require.Equal(t, "name", ps.Columns[0].Name)
	require.EqualValues(t, 2, ps.Rows)
}
