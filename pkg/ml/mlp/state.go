package mlp

import (
	"fmt"
	"math"
)

// State is the complete training state after an epoch.
type State struct {
	Params, M, V []float32
	Step         int64
	Epoch        int
	RNG          []byte // the PCG generator, binary
	Best         []float32
	BestLoss     float64
	Bad          int
	Stopped      bool
}

// State captures the training state (copies).
func (t *Trainer) State() (*State, error) {
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &State{
		Params: append([]float32(nil), t.Net.Params...),
		M:      append([]float32(nil), t.m...),
		V:      append([]float32(nil), t.v...),
		Step:   t.step, Epoch: t.epoch, RNG: rng,
		Best: append([]float32(nil), t.best...), BestLoss: t.bestLoss, Bad: t.bad, Stopped: t.stopped,
	}, nil
}

// Restore loads a State captured from a trainer with the same shape.
func (t *Trainer) Restore(s *State) error {
	n := len(t.Net.Params)
	if len(s.Params) != n || len(s.M) != len(t.m) || len(s.V) != len(t.v) || (len(s.Best) != 0 && len(s.Best) != n) {
		return fmt.Errorf("mlp: checkpoint shape does not match the network (%d parameters)", n)
	}
	if err := t.pcg.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("mlp: checkpoint rng: %w", err)
	}
	copy(t.Net.Params, s.Params)
	copy(t.m, s.M)
	copy(t.v, s.V)
	t.step, t.epoch, t.bad, t.stopped = s.Step, s.Epoch, s.Bad, s.Stopped
	t.best = append(t.best[:0], s.Best...)
	if len(s.Best) == 0 {
		t.best = nil
	}
	t.bestLoss = s.BestLoss
	if math.IsNaN(t.bestLoss) {
		t.bestLoss = math.Inf(1)
	}
	return nil
}
