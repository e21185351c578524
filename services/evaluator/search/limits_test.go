package search

import (
	"errors"
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
