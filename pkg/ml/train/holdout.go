package train

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// The hyperparameters of a process job that say which rows its script
// held out, and their defaults: a script that holds out rows with
// Holdout's rule (bmaas.train.holdout in the Python SDK, which the
// PyTorch example uses) is evaluated on the same rows by the platform.
const (
	HoldoutFractionParam   = "validation_fraction"
	HoldoutSeedParam       = "seed"
	DefaultHoldoutFraction = 0.2
)

// Holdout returns the rows of n that a process job holding out fraction
// of them with seed keeps aside, in increasing order: the
// round(n*fraction) rows whose splitmix64(splitmix64(seed) ^ row) are
// smallest (ties by row). The Python SDK's bmaas.train.holdout computes
// the same rows; a test keeps the two equal.
func Holdout(n int, fraction float64, seed uint64) []int {
	if n < 2 || fraction <= 0 {
		return nil
	}
	k := min(int(math.Round(float64(n)*fraction)), n)
	s := splitmix64(seed)
	rows := make([]int, n)
	keys := make([]uint64, n)
	for i := range rows {
		rows[i], keys[i] = i, splitmix64(s^uint64(i))
	}
	slices.SortFunc(rows, func(a, b int) int {
		if keys[a] != keys[b] {
			if keys[a] < keys[b] {
				return -1
			}
			return 1
		}
		return a - b
	})
	out := rows[:k]
	slices.Sort(out)
	return out
}

// HoldoutOf reads a process job's holdout fraction and seed from its
// hyperparameters (validation_fraction, default 0.2; seed, default 0).
func HoldoutOf(rt *schedulerv1.ProcessRuntime) (fraction float64, seed uint64, err error) {
	params := rt.GetHyperparameters()
	fraction, seed = DefaultHoldoutFraction, 0
	if v, ok := params[HoldoutFractionParam]; ok {
		if fraction, err = strconv.ParseFloat(v, 64); err != nil || fraction < 0 || fraction >= 1 {
			return 0, 0, fmt.Errorf("hyperparameter %s=%q: want a number in [0, 1)", HoldoutFractionParam, v)
		}
	}
	if v, ok := params[HoldoutSeedParam]; ok {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("hyperparameter %s=%q: want a non-negative integer", HoldoutSeedParam, v)
		}
	}
	return fraction, seed, nil
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
