package train

import (
	"bytes"
	"errors"
	"fmt"

	mlv1 "github.com/bmaas/bmaas/api/bmaas/ml/v1"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/gbdt"
	"github.com/bmaas/bmaas/pkg/ml/mlp"
	"google.golang.org/protobuf/proto"
)

// ErrCheckpoint: a checkpoint that is corrupt or belongs to another run.
var ErrCheckpoint = errors.New("invalid checkpoint")

const checkpointVersion = 1

// CheckpointMagic starts every encoded checkpoint.
var CheckpointMagic = []byte("BMAASCK\x00")

// EncodeCheckpoint serialises a checkpoint.
func EncodeCheckpoint(ck *mlv1.Checkpoint) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ck)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(nil), CheckpointMagic...), b...), nil
}

// DecodeCheckpoint parses a checkpoint.
func DecodeCheckpoint(b []byte) (*mlv1.Checkpoint, error) {
	if !bytes.HasPrefix(b, CheckpointMagic) {
		return nil, fmt.Errorf("%w: missing magic header", ErrCheckpoint)
	}
	var ck mlv1.Checkpoint
	if err := proto.Unmarshal(b[len(CheckpointMagic):], &ck); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if ck.FormatVersion != checkpointVersion {
		return nil, fmt.Errorf("%w: format version %d", ErrCheckpoint, ck.FormatVersion)
	}
	return &ck, nil
}

func mlpStateToProto(s *mlp.State) *mlv1.MLPState {
	return &mlv1.MLPState{Params: s.Params, M: s.M, V: s.V, Step: s.Step, Epoch: int32(s.Epoch), Rng: s.RNG,
		Best: s.Best, BestLoss: s.BestLoss, Bad: int32(s.Bad), Stopped: s.Stopped}
}

func mlpStateFromProto(p *mlv1.MLPState) *mlp.State {
	return &mlp.State{Params: p.Params, M: p.M, V: p.V, Step: p.Step, Epoch: int(p.Epoch), RNG: p.Rng,
		Best: p.Best, BestLoss: p.BestLoss, Bad: int(p.Bad), Stopped: p.Stopped}
}

func gbdtStateToProto(s *gbdt.State) *mlv1.GBDTState {
	out := &mlv1.GBDTState{Base: s.Base, F: s.F, Fv: s.FV, Round: int32(s.Round), Rng: s.RNG, Best: int32(s.Best),
		BestVal: s.BestVal, Bad: int32(s.Bad), Stopped: s.Stopped}
	for _, t := range s.Trees {
		out.Trees = append(out.Trees, artifact.TreeToProto(t))
	}
	return out
}

func gbdtStateFromProto(p *mlv1.GBDTState) *gbdt.State {
	out := &gbdt.State{Base: p.Base, F: p.F, FV: p.Fv, Round: int(p.Round), RNG: p.Rng, Best: int(p.Best),
		BestVal: p.BestVal, Bad: int(p.Bad), Stopped: p.Stopped}
	for _, t := range p.Trees {
		out.Trees = append(out.Trees, artifact.TreeFromProto(t))
	}
	return out
}
