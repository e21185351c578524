// Package search is the hyperparameter search of experiments as a pure
// state machine: a State takes trial events (a trial finished a job, failed,
// reported progress) and returns actions (start a trial, continue one with
// more epochs, stop one, finish). It does no I/O and reads no clock; its
// randomness comes from the seed and the trial's number, so the same
// events give the same actions, and a State marshalled to JSON and back
// continues exactly where it was (the evaluator keeps it in etcd).
package search

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// ErrInvalid marks an invalid search configuration.
var ErrInvalid = errors.New("invalid search")

// Limits on a search space: they keep every check and the grid's
// enumeration bounded whatever a request holds.
const (
	// MaxParams is the most parameters a space may have.
	MaxParams = 100
	// MaxValues is the most values of a categorical parameter (and of a
	// condition's parent values).
	MaxValues = 1000
	// MaxGridPoints is the most grid points of a numeric parameter.
	MaxGridPoints = 1000
	// MaxGridSize is the most configurations a grid search may enumerate.
	MaxGridSize = 10000
	// MaxIntBound bounds an int parameter: 2^53, the largest integer
	// that a float64 bound (as the API carries it) holds exactly.
	MaxIntBound = 1 << 53
)

// FieldError is an ErrInvalid naming the field at fault, as a path in the
// configuration ("params[0].grid_points").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return ErrInvalid.Error() + ": " + e.Field + ": " + e.Msg }

// Unwrap makes a FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Type is a parameter's distribution.
type Type string

// Parameter types.
const (
	Uniform     Type = "uniform"
	LogUniform  Type = "log_uniform"
	Int         Type = "int"
	Categorical Type = "categorical"
)

// Param is one dimension of the space. A parameter with a Parent exists
// only when the parent took one of ParentValues; a parent comes first.
type Param struct {
	Name         string   `json:"name"`
	Type         Type     `json:"type"`
	Low          float64  `json:"low,omitempty"`
	High         float64  `json:"high,omitempty"`
	Values       []string `json:"values,omitempty"`
	Parent       string   `json:"parent,omitempty"`
	ParentValues []string `json:"parent_values,omitempty"`
	// GridPoints of a numeric parameter under grid search (default 3).
	GridPoints int `json:"grid_points,omitempty"`
}

// Space is an ordered list of parameters.
type Space []Param

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks every parameter; errors name the parameter.
func (s Space) Validate() error {
	if len(s) == 0 {
		return invalid("params", "the search space is empty")
	}
	if len(s) > MaxParams {
		return invalid("params", "at most %d parameters, got %d", MaxParams, len(s))
	}
	seen := map[string]int{}
	for i, p := range s {
		f := fmt.Sprintf("params[%d] (%s)", i, p.Name)
		if p.Name == "" {
			return invalid(fmt.Sprintf("params[%d].name", i), "required")
		}
		if _, dup := seen[p.Name]; dup {
			return invalid(f, "defined twice")
		}
		switch p.Type {
		case Categorical:
			if len(p.Values) == 0 {
				return invalid(f, "a categorical parameter needs at least one value")
			}
			if len(p.Values) > MaxValues {
				return invalid(fmt.Sprintf("params[%d].values", i), "at most %d values, got %d", MaxValues, len(p.Values))
			}
		case Uniform, LogUniform, Int:
			if err := checkBounds(i, p); err != nil {
				return err
			}
			if !(p.Low < p.High) {
				return invalid(f, "low %v must be below high %v", p.Low, p.High)
			}
			if p.Type == LogUniform && p.Low <= 0 {
				return invalid(f, "a log-uniform range must be above zero, got [%v, %v]", p.Low, p.High)
			}
			if p.Type == Int && (p.Low != math.Trunc(p.Low) || p.High != math.Trunc(p.High)) {
				return invalid(f, "an int range needs integer bounds, got [%v, %v]", p.Low, p.High)
			}
		default:
			return invalid(f, "unknown type %q (uniform, log_uniform, int, categorical)", p.Type)
		}
		switch {
		case p.GridPoints < 0:
			return invalid(fmt.Sprintf("params[%d].grid_points", i), "must not be negative, got %d", p.GridPoints)
		case p.GridPoints > MaxGridPoints:
			return invalid(fmt.Sprintf("params[%d].grid_points", i), "at most %d, got %d", MaxGridPoints, p.GridPoints)
		}
		if p.Parent != "" {
			j, ok := seen[p.Parent]
			if !ok {
				return invalid(f, "parent %q must be a parameter defined before it", p.Parent)
			}
			if len(p.ParentValues) == 0 {
				return invalid(f, "a condition needs the parent's values")
			}
			if len(p.ParentValues) > MaxValues {
				return invalid(fmt.Sprintf("params[%d].condition.values", i), "at most %d values, got %d", MaxValues, len(p.ParentValues))
			}
			if par := s[j]; par.Type == Categorical {
				values := setOf(par.Values)
				for _, v := range p.ParentValues {
					if !values[v] {
						return invalid(f, "parent %q never takes %q", p.Parent, v)
					}
				}
			}
		}
		seen[p.Name] = i
	}
	return nil
}

// active reports whether p exists given the values chosen so far.
func (p Param) active(chosen map[string]string) bool {
	if p.Parent == "" {
		return true
	}
	v, ok := chosen[p.Parent]
	return ok && slices.Contains(p.ParentValues, v)
}

// checkBounds refuses a numeric parameter's bounds that no sampler can
// draw from: NaN, infinite, a range wider than a float64, an int bound
// beyond ±2^53.
func checkBounds(i int, p Param) error {
	for _, b := range []struct {
		name string
		v    float64
	}{{"low", p.Low}, {"high", p.High}} {
		field := fmt.Sprintf("params[%d].%s", i, b.name)
		switch {
		case math.IsNaN(b.v) || math.IsInf(b.v, 0):
			return invalid(field, "must be finite, got %v", b.v)
		case p.Type == Int && math.Abs(b.v) > MaxIntBound:
			return invalid(field, "an int bound must lie within ±%d (2^53), got %v", MaxIntBound, b.v)
		}
	}
	if math.IsInf(p.High-p.Low, 0) {
		return invalid(fmt.Sprintf("params[%d].high", i), "high - low must be finite, got [%v, %v]", p.Low, p.High)
	}
	return nil
}

// intBounds are p's bounds as integers within ±2^53, low <= high, whatever
// p holds (a state stored before the checks above).
func (p Param) intBounds() (lo, hi int64) {
	lo, hi = toInt(p.Low), toInt(p.High)
	return lo, max(lo, hi)
}

// toInt rounds x to an integer within ±2^53 (NaN is 0).
func toInt(x float64) int64 {
	if math.IsNaN(x) {
		return 0
	}
	return int64(math.Round(math.Max(-MaxIntBound, math.Min(MaxIntBound, x))))
}

// format renders a value of p as text.
func (p Param) format(x float64) string {
	if p.Type == Int {
		return strconv.FormatInt(toInt(x), 10)
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

// sampleOne draws a value of p uniformly (log-uniformly).
func (p Param) sampleOne(rng *rand.Rand) string {
	switch p.Type {
	case Categorical:
		return p.Values[rng.IntN(len(p.Values))]
	case LogUniform:
		return p.format(math.Exp(math.Log(p.Low) + rng.Float64()*(math.Log(p.High)-math.Log(p.Low))))
	case Int:
		lo, hi := p.intBounds()
		return strconv.FormatInt(lo+rng.Int64N(hi-lo+1), 10)
	}
	return p.format(p.Low + rng.Float64()*(p.High-p.Low))
}

// Sample draws a configuration.
func (s Space) Sample(rng *rand.Rand) map[string]string {
	out := map[string]string{}
	for _, p := range s {
		if p.active(out) {
			out[p.Name] = p.sampleOne(rng)
		}
	}
	return out
}

func setOf(xs []string) map[string]bool {
	out := make(map[string]bool, len(xs))
	for _, x := range xs {
		out[x] = true
	}
	return out
}
