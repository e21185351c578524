package search

import (
	"math"
	"sort"
)

// rungEpochs are the budgets min·eta^k, the last capped at max.
func rungEpochs(minEpochs, maxEpochs, eta int) []int {
	var out []int
	for r := minEpochs; ; r *= eta {
		if r >= maxEpochs {
			return append(out, maxEpochs)
		}
		out = append(out, r)
	}
}

// ranked returns the trials that finished rung k, best first (ties by ID).
func ranked(trials []*Trial, k int) []*Trial {
	var done []*Trial
	for _, t := range trials {
		if _, ok := t.Scores[k]; ok {
			done = append(done, t)
		}
	}
	sort.SliceStable(done, func(i, j int) bool {
		if done[i].Scores[k] != done[j].Scores[k] {
			return done[i].Scores[k] > done[j].Scores[k]
		}
		return done[i].ID < done[j].ID
	})
	return done
}

// nextASHA is asynchronous successive halving: promote a paused trial in
// the top 1/eta of its rung (highest rung first), else start a new trial
// on the lowest rung.
func (s *State) nextASHA() (Action, bool) {
	c := s.Config
	rungs := rungEpochs(c.MinEpochs, c.MaxEpochs, c.Eta)
	for k := len(rungs) - 2; k >= 0; k-- {
		done := ranked(s.Trials, k)
		for _, t := range done[:len(done)/c.Eta] {
			if t.Status == Paused && t.Rung == k {
				return s.resume(t, rungs[k+1]), true
			}
		}
	}
	if len(s.Trials) < c.MaxTrials {
		n := len(s.Trials)
		return s.start(c.Space.Sample(s.rng(n)), rungs[0], 0, 0), true
	}
	return Action{}, false
}

// nextHyperband runs the brackets of Hyperband one after the other, each
// a synchronous successive halving: n configurations on r epochs, the top
// 1/eta of them continued on eta·r, and so on up to max_epochs.
func (s *State) nextHyperband() (Action, bool) {
	c := s.Config
	smax := len(rungEpochs(c.MinEpochs, c.MaxEpochs, c.Eta)) - 1
	for s.Bracket <= smax {
		b := smax - s.Bracket
		n := int(math.Ceil(float64(smax+1) / float64(b+1) * math.Pow(float64(c.Eta), float64(b))))
		r0 := max(c.MinEpochs, int(float64(c.MaxEpochs)/math.Pow(float64(c.Eta), float64(b))))
		rungs := rungEpochs(r0, c.MaxEpochs, c.Eta)
		var members []*Trial
		for _, t := range s.Trials {
			if t.Bracket == s.Bracket {
				members = append(members, t)
			}
		}
		if len(members) < n && len(s.Trials) < c.MaxTrials {
			return s.start(c.Space.Sample(s.rng(len(s.Trials))), rungs[0], 0, s.Bracket), true
		}
		for k := 0; k < len(rungs); k++ {
			var atK int
			for _, t := range members {
				if t.Rung >= k {
					atK++
					if t.Rung == k && t.Status == Running {
						return Action{}, false // the rung is not complete yet
					}
				}
			}
			top := atK / c.Eta
			if k == len(rungs)-1 || top == 0 {
				break
			}
			for _, t := range ranked(members, k)[:top] {
				if t.Status == Paused && t.Rung == k {
					return s.resume(t, rungs[k+1]), true
				}
			}
		}
		for _, t := range members {
			if t.Status == Running {
				return Action{}, false
			}
		}
		if len(s.Trials) >= c.MaxTrials {
			return Action{}, false
		}
		s.Bracket++
	}
	return Action{}, false
}
