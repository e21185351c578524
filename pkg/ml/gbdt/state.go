package gbdt

import (
	"fmt"
	"math"
)

// State is the complete boosting state after a round: with the same data,
// Config and objective, Restore continues the run bit for bit.
type State struct {
	Trees   []Tree
	Base    []float64
	F, FV   []float64 // raw scores of the training and validation rows
	Round   int
	RNG     []byte
	Best    int
	BestVal float64
	Bad     int
	Stopped bool
}

// State captures the boosting state (the trees are shared, not copied;
// they are never modified once grown).
func (b *Booster) State() (*State, error) {
	rng, err := b.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &State{
		Trees: append([]Tree(nil), b.Model.Trees...), Base: append([]float64(nil), b.Model.Base...),
		F: append([]float64(nil), b.f...), FV: append([]float64(nil), b.fv...),
		Round: b.round, RNG: rng, Best: b.best, BestVal: b.bestVal, Bad: b.bad, Stopped: b.stopped,
	}, nil
}

// Restore loads a State into a Booster built on the same data.
func (b *Booster) Restore(s *State) error {
	k := b.Model.K
	if len(s.F) != len(b.f) || len(s.Base) != k || len(s.Trees) != s.Round*k && !s.Stopped {
		return fmt.Errorf("gbdt: checkpoint does not match the data (%d scores, want %d)", len(s.F), len(b.f))
	}
	if b.nv > 0 && len(s.FV) != len(b.fv) {
		return fmt.Errorf("gbdt: checkpoint has %d validation scores, want %d", len(s.FV), len(b.fv))
	}
	for i := range s.Trees {
		if err := s.Trees[i].Validate(b.d); err != nil {
			return fmt.Errorf("gbdt: checkpoint tree %d: %w", i, err)
		}
	}
	if err := b.pcg.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("gbdt: checkpoint rng: %w", err)
	}
	b.Model.Trees = append([]Tree(nil), s.Trees...)
	copy(b.Model.Base, s.Base)
	copy(b.f, s.F)
	if b.nv > 0 {
		copy(b.fv, s.FV)
	}
	b.round, b.best, b.bad, b.stopped = s.Round, s.Best, s.Bad, s.Stopped
	b.bestVal = s.BestVal
	if math.IsNaN(b.bestVal) {
		b.bestVal = math.Inf(1)
	}
	return nil
}

// Validate checks that a tree is well formed for d features: consistent
// lengths, children after their parent (so no cycles), features in range.
func (t *Tree) Validate(d int) error {
	n := len(t.Value)
	if n == 0 || len(t.Feature) != n || len(t.Threshold) != n || len(t.Left) != n || len(t.Right) != n {
		return fmt.Errorf("inconsistent node arrays")
	}
	for i := range n {
		l, r := t.Left[i], t.Right[i]
		if l < 0 {
			if r >= 0 {
				return fmt.Errorf("node %d: one child", i)
			}
			continue
		}
		if int(l) <= i || int(r) <= i || int(l) >= n || int(r) >= n {
			return fmt.Errorf("node %d: child out of order", i)
		}
		if t.Feature[i] < 0 || int(t.Feature[i]) >= d {
			return fmt.Errorf("node %d: feature %d out of range", i, t.Feature[i])
		}
	}
	return nil
}
