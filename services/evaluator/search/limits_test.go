package search

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// A grid is bounded: a parameter's points and the number of combinations
// are capped before anything is enumerated, with the field named.
func TestGridIsBounded(t *testing.T) {
	for name, tc := range map[string]struct {
		space Space
		want  string
	}{
		"points over the cap": {Space{{Name: "lr", Type: Uniform, High: 1, GridPoints: 2000}},
			"params[0].grid_points: at most 1000, got 2000"},
		"negative points": {Space{{Name: "lr", Type: Uniform, High: 1}, {Name: "m", Type: Uniform, High: 1, GridPoints: -1}},
			"params[1].grid_points: must not be negative, got -1"},
		"too many combinations": {Space{{Name: "a", Type: Uniform, High: 1, GridPoints: 30},
			{Name: "b", Type: Uniform, High: 1, GridPoints: 30}, {Name: "c", Type: Uniform, High: 1, GridPoints: 30}},
			"params: the grid has more than 10000 combinations; use fewer grid_points or values, or another searcher"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(Config{Searcher: Grid, Space: tc.space, MaxTrials: 10})
			require.True(t, errors.Is(err, ErrInvalid), "%v", err)
			require.EqualError(t, err, ErrInvalid.Error()+": "+tc.want)
		})
	}
	// A grid at the caps is fine.
	big := Space{{Name: "a", Type: Uniform, High: 1, GridPoints: 100}, {Name: "b", Type: Uniform, High: 1, GridPoints: 100}}
	s, err := New(Config{Searcher: Grid, Space: big, MaxTrials: 1_000_000})
	require.NoError(t, err)
	require.Equal(t, 10000, s.Config.MaxTrials)
	acts := s.Step(nil)
	require.Equal(t, map[string]string{"a": "0", "b": "0"}, acts[0].Params)
}

// The number of parameters and of categorical values is capped too, so no
// check of the space grows with the square of the request.
func TestSpaceSizeIsBounded(t *testing.T) {
	many := make(Space, 101)
	for i := range many {
		many[i] = Param{Name: "p" + strconv.Itoa(i), Type: Categorical, Values: []string{"x"}}
	}
	require.EqualError(t, many.Validate(), ErrInvalid.Error()+": params: at most 100 parameters, got 101")

	vals := make([]string, 1001)
	for i := range vals {
		vals[i] = strconv.Itoa(i)
	}
	require.EqualError(t, Space{{Name: "c", Type: Categorical, Values: vals}}.Validate(),
		ErrInvalid.Error()+": params[0].values: at most 1000 values, got 1001")
}

// Numeric bounds are finite, an int parameter's within ±2^53, with the
// bound named.
func TestNumericBoundsAreChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		p    Param
		want string
	}{
		"int high":       {Param{Name: "n", Type: Int, Low: 1, High: 1e300}, "params[0].high: an int bound must lie within ±9007199254740992 (2^53), got 1e+300"},
		"int low":        {Param{Name: "n", Type: Int, Low: -1e19, High: 1}, "params[0].low: an int bound must lie within ±9007199254740992 (2^53), got -1e+19"},
		"infinite high":  {Param{Name: "x", Type: Uniform, Low: 0, High: math.Inf(1)}, "params[0].high: must be finite, got +Inf"},
		"infinite low":   {Param{Name: "x", Type: LogUniform, Low: math.Inf(-1), High: 1}, "params[0].low: must be finite, got -Inf"},
		"range overflow": {Param{Name: "x", Type: Uniform, Low: -1e308, High: 1e308}, "params[0].high: high - low must be finite, got [-1e+308, 1e+308]"},
	} {
		t.Run(name, func(t *testing.T) {
			require.EqualError(t, Space{tc.p}.Validate(), ErrInvalid.Error()+": "+tc.want)
		})
	}
	require.NoError(t, Space{{Name: "n", Type: Int, Low: -1 << 53, High: 1 << 53}}.Validate())
}

// Sampling an int parameter never panics, even with bounds that were
// never validated (a state stored before the checks).
func TestSampleIntIsSafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []Param{
		{Name: "n", Type: Int, Low: 0, High: 1e300},
		{Name: "n", Type: Int, Low: -1e300, High: 1e300},
		{Name: "n", Type: Int, Low: 5, High: 1},
		{Name: "n", Type: Int, Low: math.NaN(), High: 3},
		{Name: "n", Type: Int, Low: -1 << 53, High: 1 << 53},
	} {
		for range 100 {
			var v string
			require.NotPanics(t, func() { v = p.sampleOne(rng) }, "%+v", p)
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			require.LessOrEqual(t, math.Abs(float64(n)), float64(1<<53))
		}
	}
	// In range, the draws are what they were (IntN and Int64N draw alike):
	// the same seed, the same trials.
	p, old := Param{Name: "n", Type: Int, Low: 1, High: 3}, rand.New(rand.NewPCG(1, 1))
	got := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		require.Equal(t, strconv.Itoa(1+old.IntN(3)), p.sampleOne(got))
	}
}
