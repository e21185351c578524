package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var (
	// ErrUnknownAlgorithm: Spec.Algorithm names no algorithm.
	ErrUnknownAlgorithm = errors.New("unknown algorithm")
	// ErrInvalidParam: a hyperparameter is unknown, mistyped or out of
	// range; the message names it.
	ErrInvalidParam = errors.New("invalid parameter")
	// ErrInvalidData: the data cannot train the model (no rows, unknown
	// target, a single class...); the message says why.
	ErrInvalidData = errors.New("invalid training data")
)

type kind int

const (
	kInt kind = iota
	kFloat
	kString
	kInts
)

// param declares one hyperparameter.
type param struct {
	name   string
	kind   kind
	def    string
	lo, hi float64 // inclusive range for numbers (and list elements)
	openLo bool    // lo excluded
	enum   []string
	doc    string
}

// preprocessing parameters, accepted by every algorithm.
var common = []param{
	{name: "impute", kind: kString, def: "none", enum: []string{"none", "mean", "median", "most_frequent", "constant"}, doc: "imputation of missing values"},
	{name: "impute_value", kind: kFloat, def: "0", lo: -math.MaxFloat64, hi: math.MaxFloat64, doc: "constant for impute=constant"},
	{name: "scale", kind: kString, def: "standard", enum: []string{"none", "standard", "minmax"}, doc: "scaling of numeric features"},
	{name: "pca_components", kind: kInt, def: "0", lo: 0, hi: 1 << 20, doc: "keep that many principal components (0: no PCA)"},
	{name: "pca_variance", kind: kFloat, def: "0", lo: 0, hi: 0.999999, doc: "keep components explaining that variance fraction"},
}

var algorithms = map[string][]param{
	"linear": {{name: "alpha", kind: kFloat, def: "0", lo: 0, hi: math.MaxFloat64, doc: "ridge penalty (0: ordinary least squares)"}},
	"ridge":  {{name: "alpha", kind: kFloat, def: "1", lo: 0, hi: math.MaxFloat64, openLo: true, doc: "ridge penalty"}},
	"logistic": {
		{name: "C", kind: kFloat, def: "1", lo: 0, hi: math.MaxFloat64, openLo: true, doc: "inverse L2 strength"},
		{name: "max_iter", kind: kInt, def: "0", lo: 0, hi: 1e6, doc: "solver iterations (0: default)"},
	},
	"mlp": {
		{name: "hidden", kind: kInts, def: "64,64", lo: 1, hi: 1 << 16, doc: "hidden layer sizes"},
		{name: "activation", kind: kString, def: "relu", enum: []string{"relu", "tanh", "sigmoid", "gelu"}},
		{name: "optimizer", kind: kString, def: "adam", enum: []string{"adam", "sgd"}},
		{name: "lr", kind: kFloat, def: "0.001", lo: 0, hi: 10, openLo: true, doc: "learning rate"},
		{name: "momentum", kind: kFloat, def: "0.9", lo: 0, hi: 0.999999},
		{name: "beta1", kind: kFloat, def: "0.9", lo: 0, hi: 0.999999},
		{name: "beta2", kind: kFloat, def: "0.999", lo: 0, hi: 0.999999999},
		{name: "eps", kind: kFloat, def: "1e-8", lo: 0, hi: 1, openLo: true},
		{name: "weight_decay", kind: kFloat, def: "0", lo: 0, hi: 10},
		{name: "batch_size", kind: kInt, def: "32", lo: 1, hi: 1 << 20},
		{name: "epochs", kind: kInt, def: "100", lo: 1, hi: 1e6},
		{name: "schedule", kind: kString, def: "constant", enum: []string{"constant", "step", "exponential", "cosine"}},
		{name: "step_size", kind: kInt, def: "10", lo: 1, hi: 1e6},
		{name: "gamma", kind: kFloat, def: "0.5", lo: 0, hi: 1, openLo: true},
		{name: "patience", kind: kInt, def: "10", lo: 0, hi: 1e6, doc: "early stopping (0: off)"},
	},
	"gbdt": {
		{name: "rounds", kind: kInt, def: "100", lo: 1, hi: 1e6},
		{name: "learning_rate", kind: kFloat, def: "0.1", lo: 0, hi: 1, openLo: true},
		{name: "max_depth", kind: kInt, def: "3", lo: 0, hi: 64},
		{name: "max_leaves", kind: kInt, def: "0", lo: 0, hi: 1 << 16},
		{name: "min_child_weight", kind: kFloat, def: "1", lo: 0, hi: math.MaxFloat64},
		{name: "lambda", kind: kFloat, def: "1", lo: 0, hi: math.MaxFloat64},
		{name: "subsample", kind: kFloat, def: "1", lo: 0, hi: 1, openLo: true},
		{name: "colsample", kind: kFloat, def: "1", lo: 0, hi: 1, openLo: true},
		{name: "max_bins", kind: kInt, def: "256", lo: 2, hi: 256},
		{name: "patience", kind: kInt, def: "10", lo: 0, hi: 1e6, doc: "early stopping (0: off)"},
		{name: "scale", kind: kString, def: "none", enum: []string{"none", "standard", "minmax"}},
	},
}

// Algorithms lists the algorithm names.
func Algorithms() []string {
	out := make([]string, 0, len(algorithms))
	for a := range algorithms {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Params holds validated hyperparameters with defaults filled in.
type Params struct {
	raw map[string]string
}

// Map returns every parameter with its value as text.
func (p Params) Map() map[string]string { return p.raw }

func (p Params) str(name string) string { return p.raw[name] }
func (p Params) float(name string) float64 {
	v, _ := strconv.ParseFloat(p.raw[name], 64)
	return v
}
func (p Params) int(name string) int {
	v, _ := strconv.Atoi(p.raw[name])
	return v
}
func (p Params) ints(name string) []int {
	var out []int
	for _, f := range strings.Split(p.raw[name], ",") {
		v, _ := strconv.Atoi(strings.TrimSpace(f))
		out = append(out, v)
	}
	return out
}

// ParseParams validates the hyperparameters of an algorithm and fills in
// the defaults.
func ParseParams(algorithm string, given map[string]string) (Params, error) {
	specific, ok := algorithms[algorithm]
	if !ok {
		return Params{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownAlgorithm, algorithm, strings.Join(Algorithms(), ", "))
	}
	schema := map[string]param{}
	for _, p := range common {
		schema[p.name] = p
	}
	for _, p := range specific { // algorithm entries override the common defaults
		schema[p.name] = p
	}
	out := map[string]string{}
	for name, p := range schema {
		out[name] = p.def
	}
	for name, v := range given {
		p, ok := schema[name]
		if !ok {
			names := make([]string, 0, len(schema))
			for n := range schema {
				names = append(names, n)
			}
			sort.Strings(names)
			return Params{}, fmt.Errorf("%w: param %q: unknown for algorithm %q (known: %s)", ErrInvalidParam, name, algorithm, strings.Join(names, ", "))
		}
		v = strings.TrimSpace(v)
		if err := p.check(v); err != nil {
			return Params{}, fmt.Errorf("%w: param %q: %v", ErrInvalidParam, name, err)
		}
		out[name] = v
	}
	return Params{raw: out}, nil
}

func (p param) check(v string) error {
	switch p.kind {
	case kString:
		if !slices.Contains(p.enum, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(p.enum, ", "))
		}
	case kInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		return p.inRange(float64(n))
	case kFloat:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a finite number", v)
		}
		return p.inRange(f)
	case kInts:
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%q is not a comma-separated list of integers", v)
			}
			if err := p.inRange(float64(n)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p param) inRange(f float64) error {
	if f < p.lo || f > p.hi || (p.openLo && f == p.lo) {
		open := "["
		if p.openLo {
			open = "("
		}
		return fmt.Errorf("%v out of range %s%v, %v]", f, open, p.lo, p.hi)
	}
	return nil
}
