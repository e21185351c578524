package train

import (
	"fmt"
	"slices"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// Split is how a run cuts its data: the row indices of each part, in
// file order.
type Split struct {
	Train, Validation, Test []int
}

// SplitOf returns the rows a run of spec on data trains, validates and
// tests on: the same fractions and their defaults (see Spec), seed and
// class strata as Run, so a caller that holds the data of a finished run
// finds the rows its metrics were computed on. It fails as Run would on
// a spec or data that cannot be split.
func SplitOf(spec Spec, data *dataset.Frame) (Split, error) {
	params, err := ParseParams(spec.Algorithm, spec.Params)
	if err != nil {
		return Split{}, err
	}
	if data == nil || data.NumRows() == 0 {
		return Split{}, fmt.Errorf("%w: no rows", ErrInvalidData)
	}
	tgt, err := prepareTarget(spec, data)
	if err != nil {
		return Split{}, err
	}
	return splitRows(spec, params, tgt, data.NumRows())
}

// fractions are the validation and test fractions of a run: Test 0 means
// 0.2, Validation 0 means 0.1 for an algorithm that stops early, a
// negative value nothing.
func fractions(spec Spec, params Params) (val, test float64) {
	test, val = spec.Test, spec.Validation
	if test == 0 {
		test = 0.2
	}
	if val == 0 && (spec.Algorithm == "mlp" || spec.Algorithm == "gbdt") && params.int("patience") > 0 {
		val = 0.1
	}
	return max(val, 0), max(test, 0)
}

// splitRows cuts n rows, stratified by class for a classifier.
func splitRows(spec Spec, params Params, tgt *target, n int) (Split, error) {
	val, test := fractions(spec, params)
	if test+val >= 1 {
		return Split{}, fmt.Errorf("%w: validation %v + test %v leave no training rows", ErrInvalidParam, val, test)
	}
	var strata []int32
	if tgt.classify {
		strata = make([]int32, len(tgt.y))
		for i, v := range tgt.y {
			strata[i] = int32(v)
		}
	}
	parts, err := dataset.Split(n, []float64{1 - val - test, val, test}, spec.Seed, strata)
	if err != nil {
		return Split{}, fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	if len(parts[0]) == 0 {
		return Split{}, fmt.Errorf("%w: no training rows after the split", ErrInvalidData)
	}
	for _, p := range parts {
		slices.Sort(p) // row order as in the file
	}
	return Split{Train: parts[0], Validation: parts[1], Test: parts[2]}, nil
}
