package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// Spec says what to train.
type Spec struct {
	// Algorithm is one of Algorithms(): linear, ridge, logistic, mlp, gbdt.
	Algorithm string `json:"algorithm"`
	// Target is the column to predict.
	Target string `json:"target"`
	// Features are the input columns (default: every column but Target).
	Features []string `json:"features,omitempty"`
	// Task is "regression" or "classification". Default: logistic
	// classifies, linear and ridge regress, mlp and gbdt classify when the
	// target is categorical or holds at most 20 distinct integers.
	Task string `json:"task,omitempty"`
	// Params are the hyperparameters as text; see ParseParams and the
	// package documentation for names, defaults and ranges.
	Params map[string]string `json:"params,omitempty"`
	// Validation and Test are the fractions of rows held out (stratified
	// for classification). Test 0 means 0.2; Validation 0 means 0.1 for
	// algorithms with early stopping and none otherwise. A negative value
	// holds out nothing.
	Validation float64 `json:"validation,omitempty"`
	Test       float64 `json:"test,omitempty"`
	// Seed drives the split, the initialisation and the sampling.
	Seed uint64 `json:"seed"`
}

// Event reports progress: after each epoch (mlp) or round (gbdt), the
// "train" loss and, with validation rows, the "validation" loss; at the
// end (Final), every metric of each split.
type Event struct {
	Step    int
	Final   bool
	Split   string
	Metrics map[string]float64
}

// Callbacks connect a run to its caller. All are optional.
type Callbacks struct {
	// OnEvent receives progress and final metrics.
	OnEvent func(Event)
	// OnCheckpoint receives an encoded checkpoint (see Resume) every
	// CheckpointEvery epochs or rounds, after the last one, and once more
	// when ctx is cancelled mid-run. An error aborts the run.
	OnCheckpoint    func(ctx context.Context, checkpoint []byte) error
	CheckpointEvery int
}

func (c Callbacks) emit(e Event) {
	if c.OnEvent != nil {
		c.OnEvent(e)
	}
}

// budgetParams are the hyperparameters a resumed run may change: the
// number of epochs (mlp) or rounds (gbdt) to train up to.
var budgetParams = []string{"epochs", "rounds"}

// fingerprint hashes the spec and the data so that a checkpoint is only
// restored into the run it came from, or into one that only trains for
// more epochs or rounds.
func fingerprint(spec Spec, f *dataset.Frame) []byte {
	h := sha256.New()
	spec.Params = maps.Clone(spec.Params)
	for _, k := range budgetParams {
		delete(spec.Params, k)
	}
	keys := make([]string, 0, len(spec.Params))
	for k := range spec.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	js, _ := json.Marshal(struct {
		S Spec
		K []string
	}{spec, keys})
	h.Write(js)
	var b [8]byte
	for _, c := range f.Columns() {
		h.Write([]byte(c.Name))
		for _, v := range c.Num {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			h.Write(b[:])
		}
		for _, code := range c.Codes {
			binary.LittleEndian.PutUint32(b[:4], uint32(code))
			h.Write(b[:4])
		}
		for _, l := range c.Levels {
			h.Write([]byte(strconv.Quote(l)))
		}
	}
	return h.Sum(nil)
}

// target holds the prepared target column.
type target struct {
	classify bool
	labels   []string
	y        []float64 // values, or class indices
}

func prepareTarget(spec Spec, f *dataset.Frame) (*target, error) {
	c, err := f.Col(spec.Target)
	if err != nil {
		return nil, fmt.Errorf("%w: target: %v", ErrInvalidData, err)
	}
	for r := range c.Len() {
		if c.IsMissing(r) {
			return nil, fmt.Errorf("%w: row %d, column %q: missing target value", ErrInvalidData, r+1, spec.Target)
		}
		if c.Kind == dataset.Numeric && math.IsInf(c.Num[r], 0) {
			return nil, fmt.Errorf("%w: row %d, column %q: infinite target value", ErrInvalidData, r+1, spec.Target)
		}
	}
	t := &target{}
	switch spec.Task {
	case "classification":
		t.classify = true
	case "regression":
		if c.Kind == dataset.Categorical {
			return nil, fmt.Errorf("%w: column %q: regression on a categorical target", ErrInvalidData, spec.Target)
		}
	case "":
		switch spec.Algorithm {
		case "logistic":
			t.classify = true
		case "mlp", "gbdt":
			t.classify = c.Kind == dataset.Categorical || smallIntegers(c.Num)
		}
	default:
		return nil, fmt.Errorf("%w: task %q: want regression or classification", ErrInvalidParam, spec.Task)
	}
	if !t.classify {
		t.y = c.Num
		if spec.Algorithm == "logistic" {
			return nil, fmt.Errorf("%w: logistic regression needs a classification task", ErrInvalidParam)
		}
		return t, nil
	}
	if spec.Algorithm == "linear" || spec.Algorithm == "ridge" {
		return nil, fmt.Errorf("%w: %s regression cannot classify; use logistic", ErrInvalidParam, spec.Algorithm)
	}
	t.y = make([]float64, c.Len())
	if c.Kind == dataset.Categorical {
		order := make([]int, len(c.Levels))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return c.Levels[order[a]] < c.Levels[order[b]] })
		rank := make([]int, len(c.Levels))
		for i, o := range order {
			rank[o] = i
			t.labels = append(t.labels, c.Levels[o])
		}
		for r, code := range c.Codes {
			t.y[r] = float64(rank[code])
		}
		return t, nil
	}
	vals := append([]float64(nil), c.Num...)
	sort.Float64s(vals)
	var distinct []float64
	for i, v := range vals {
		if i == 0 || v != vals[i-1] {
			distinct = append(distinct, v)
			t.labels = append(t.labels, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	for r, v := range c.Num {
		t.y[r] = float64(sort.SearchFloat64s(distinct, v))
	}
	return t, nil
}

func smallIntegers(xs []float64) bool {
	seen := map[float64]bool{}
	for _, v := range xs {
		if v != math.Trunc(v) {
			return false
		}
		if seen[v] = true; len(seen) > 20 {
			return false
		}
	}
	return true
}
