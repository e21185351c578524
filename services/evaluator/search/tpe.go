package search

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
)

// tpeCandidates is the number of draws from l(x) scored by l(x)/g(x).
const tpeCandidates = 24

// suggestTPE is the tree-structured Parzen estimator: after a few random
// trials, split the scored ones into the best quarter (l) and the rest
// (g), draw candidates from l and keep the one with the best l/g, each
// parameter modelled independently (conditional ones only where active).
func (s *State) suggestTPE(n int) map[string]string {
	rng := s.rng(n)
	var scored []*Trial
	for _, t := range s.Trials {
		if t.Scored && t.Status == Done {
			scored = append(scored, t)
		}
	}
	startup := max(3, min(10, s.Config.MaxTrials/4))
	if len(scored) < startup {
		return s.Config.Space.Sample(rng)
	}
	sort.SliceStable(scored, func(i, j int) bool { return scored[i].Score > scored[j].Score })
	nGood := max(1, int(math.Ceil(0.25*float64(len(scored)))))
	good, bad := scored[:nGood], scored[nGood:]
	var best map[string]string
	bestScore := math.Inf(-1)
	for range tpeCandidates {
		cand := map[string]string{}
		var sc float64
		for _, p := range s.Config.Space {
			if !p.active(cand) {
				continue
			}
			gv, bv := observed(p, good), observed(p, bad)
			v := drawParzen(p, gv, rng)
			cand[p.Name] = v
			sc += math.Log(density(p, gv, v)) - math.Log(density(p, bv, v))
		}
		if sc > bestScore {
			best, bestScore = cand, sc
		}
	}
	return best
}

// observed returns the values p took in trials.
func observed(p Param, trials []*Trial) []string {
	var out []string
	for _, t := range trials {
		if v, ok := t.Params[p.Name]; ok {
			out = append(out, v)
		}
	}
	return out
}

// unit maps a numeric value to [0, 1] (log scale for log-uniform).
func unit(p Param, v string) float64 {
	x, _ := strconv.ParseFloat(v, 64)
	if p.Type == LogUniform {
		return (math.Log(x) - math.Log(p.Low)) / (math.Log(p.High) - math.Log(p.Low))
	}
	return (x - p.Low) / (p.High - p.Low)
}

func fromUnit(p Param, u float64) string {
	u = math.Min(1, math.Max(0, u))
	if p.Type == LogUniform {
		return p.format(math.Exp(math.Log(p.Low) + u*(math.Log(p.High)-math.Log(p.Low))))
	}
	return p.format(p.Low + u*(p.High-p.Low))
}

func bandwidth(n int) float64 { return math.Max(0.05, 0.3*math.Pow(float64(n), -0.2)) }

// drawParzen samples from the mixture of the prior and one kernel per
// observation.
func drawParzen(p Param, obs []string, rng *rand.Rand) string {
	i := rng.IntN(len(obs) + 1)
	if i == len(obs) {
		return p.sampleOne(rng)
	}
	if p.Type == Categorical {
		return obs[i]
	}
	for range 20 { // a truncated kernel: redraw what falls outside the range
		if u := unit(p, obs[i]) + bandwidth(len(obs))*rng.NormFloat64(); u >= 0 && u <= 1 {
			return fromUnit(p, u)
		}
	}
	return p.sampleOne(rng)
}

// density is the Parzen estimate at v: the prior plus one kernel per
// observation, normalised.
func density(p Param, obs []string, v string) float64 {
	if p.Type == Categorical {
		k := 0
		for _, o := range obs {
			if o == v {
				k++
			}
		}
		return (float64(k) + 1) / (float64(len(obs)) + float64(len(p.Values)))
	}
	u, bw := unit(p, v), bandwidth(len(obs))
	d := 1.0 // the uniform prior on [0, 1]
	for _, o := range obs {
		z := (u - unit(p, o)) / bw
		d += math.Exp(-z*z/2) / (bw * math.Sqrt(2*math.Pi))
	}
	return d / float64(len(obs)+1)
}

// progress records an epoch's loss and applies the median stopping rule:
// a trial whose best loss so far is worse than the median of the other
// trials' mean losses over the same epochs is stopped.
func (s *State) progress(t *Trial, ev *Event) []Action {
	if ev.Epoch <= 0 || math.IsNaN(ev.Value) || math.IsInf(ev.Value, 0) {
		return nil
	}
	for len(t.Curve) < ev.Epoch {
		t.Curve = append(t.Curve, ev.Value)
	}
	t.Curve[ev.Epoch-1] = ev.Value
	if !s.Config.MedianStopping || s.Config.Searcher == ASHA || s.Config.Searcher == Hyperband || ev.Epoch < 3 {
		return nil
	}
	var means []float64
	for _, o := range s.Trials {
		if o == t || len(o.Curve) < ev.Epoch {
			continue
		}
		var sum float64
		for _, x := range o.Curve[:ev.Epoch] {
			sum += x
		}
		means = append(means, sum/float64(ev.Epoch))
	}
	if len(means) < 3 {
		return nil
	}
	sort.Float64s(means)
	median := means[len(means)/2]
	if len(means)%2 == 0 {
		median = (means[len(means)/2-1] + means[len(means)/2]) / 2
	}
	best := math.Inf(1)
	for _, x := range t.Curve[:ev.Epoch] {
		best = math.Min(best, x)
	}
	if best <= median {
		return nil
	}
	t.Status = Stopped
	return []Action{{Kind: Stop, Trial: t.ID, Seq: t.Seq}}
}
