package dataset

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	parts, err := Split(100, []float64{0.8, 0.2}, 7, nil)
	require.NoError(t, err)
	require.Len(t, parts[0], 80)
	require.Len(t, parts[1], 20)
	all := append(append([]int{}, parts[0]...), parts[1]...)
	sort.Ints(all)
	for i, r := range all {
		require.Equal(t, i, r)
	}
	again, _ := Split(100, []float64{0.8, 0.2}, 7, nil)
	require.Equal(t, parts, again)
	other, _ := Split(100, []float64{0.8, 0.2}, 8, nil)
	require.NotEqual(t, parts, other)

	strata := make([]int32, 150)
	for i := range strata {
		strata[i] = int32(i / 50)
	}
	parts, err = Split(150, []float64{0.6, 0.2, 0.2}, 1, strata)
	require.NoError(t, err)
	for _, p := range parts[1:] {
		var per [3]int
		for _, r := range p {
			per[strata[r]]++
		}
		require.Equal(t, [3]int{10, 10, 10}, per)
	}
	_, err = Split(10, []float64{0.5, 0.6}, 1, nil)
	require.Error(t, err)
	_, err = Split(0, []float64{1}, 1, nil)
	require.ErrorIs(t, err, ErrEmpty)
}

func TestKFold(t *testing.T) {
	t.Parallel()
	strata := make([]int32, 30)
	for i := range strata {
		strata[i] = int32(i % 3)
	}
	folds, err := KFold(30, 5, 3, strata)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, f := range folds {
		require.Len(t, f, 6)
		var per [3]int
		for _, r := range f {
			require.False(t, seen[r])
			seen[r] = true
			per[strata[r]]++
		}
		require.Equal(t, [3]int{2, 2, 2}, per)
	}
	require.Len(t, Complement(30, folds[0]), 24)
	_, err = KFold(3, 5, 1, nil)
	require.Error(t, err)
}
