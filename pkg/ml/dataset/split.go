package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// NewRand returns the deterministic generator used for splits, seeded
// from one number.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Split shuffles the row indices 0..n-1 with the seed and cuts them into
// parts of the given fractions (which must sum to 1 within 1e-9). With
// strata (one class per row, len n), each class is cut separately, so
// every part keeps the class proportions (stratified split). Each part
// lists its rows in shuffled order.
func Split(n int, fractions []float64, seed uint64, strata []int32) ([][]int, error) {
	if n <= 0 {
		return nil, fmt.Errorf("split: %w: no rows", ErrEmpty)
	}
	sum := 0.0
	for _, f := range fractions {
		if f < 0 || math.IsNaN(f) {
			return nil, fmt.Errorf("split: fraction %v out of range", f)
		}
		sum += f
	}
	if len(fractions) == 0 || math.Abs(sum-1) > 1e-9 {
		return nil, fmt.Errorf("split: fractions %v do not sum to 1", fractions)
	}
	if strata != nil && len(strata) != n {
		return nil, fmt.Errorf("split: %d strata for %d rows", len(strata), n)
	}
	rng := NewRand(seed)
	perm := rng.Perm(n)
	groups := [][]int{perm}
	if strata != nil {
		groups = groupBy(perm, strata)
	}
	parts := make([][]int, len(fractions))
	for _, g := range groups {
		cum, prev := 0.0, 0
		for k, f := range fractions {
			cum += f
			end := int(math.Round(cum * float64(len(g))))
			if k == len(fractions)-1 {
				end = len(g)
			}
			parts[k] = append(parts[k], g[prev:end]...)
			prev = end
		}
	}
	if strata != nil {
		for _, p := range parts {
			rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		}
	}
	return parts, nil
}

// KFold assigns the rows 0..n-1 to k folds after a seeded shuffle and
// returns the rows of each fold; with strata the folds are stratified.
func KFold(n, k int, seed uint64, strata []int32) ([][]int, error) {
	if k < 2 || k > n {
		return nil, fmt.Errorf("kfold: k=%d out of range [2, %d]", k, n)
	}
	if strata != nil && len(strata) != n {
		return nil, fmt.Errorf("kfold: %d strata for %d rows", len(strata), n)
	}
	perm := NewRand(seed).Perm(n)
	order := perm
	if strata != nil {
		order = nil
		for _, g := range groupBy(perm, strata) {
			order = append(order, g...)
		}
	}
	folds := make([][]int, k)
	for p, row := range order {
		folds[p%k] = append(folds[p%k], row)
	}
	return folds, nil
}

// Complement returns the rows of 0..n-1 not in rows, in increasing order.
func Complement(n int, rows []int) []int {
	in := make([]bool, n)
	for _, r := range rows {
		in[r] = true
	}
	out := make([]int, 0, n-len(rows))
	for i, b := range in {
		if !b {
			out = append(out, i)
		}
	}
	return out
}

// groupBy splits perm by class, keeping perm's order inside a class; the
// groups are ordered by class.
func groupBy(perm []int, strata []int32) [][]int {
	byClass := map[int32][]int{}
	for _, r := range perm {
		byClass[strata[r]] = append(byClass[strata[r]], r)
	}
	classes := make([]int32, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool { return classes[i] < classes[j] })
	out := make([][]int, len(classes))
	for i, c := range classes {
		out[i] = byClass[c]
	}
	return out
}
