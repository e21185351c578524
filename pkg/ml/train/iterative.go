package train

import (
	"context"
	"fmt"
	"math"

	mlv1 "github.com/bmaas/bmaas/api/bmaas/ml/v1"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/gbdt"
	"github.com/bmaas/bmaas/pkg/ml/mlp"
)

func to32(x []float64) []float32 {
	o := make([]float32, len(x))
	for i, v := range x {
		o[i] = float32(v)
	}
	return o
}

func (j *job) fitMLP(ctx context.Context, cb Callbacks, ck *mlv1.Checkpoint) (artifact.Estimator, error) {
	p := j.params
	act, err := mlp.ParseActivation(p.str("activation"))
	if err != nil {
		return nil, err
	}
	cfg := mlp.Config{
		Hidden: p.ints("hidden"), Activation: act, Optimizer: p.str("optimizer"), LR: p.float("lr"),
		Momentum: p.float("momentum"), Beta1: p.float("beta1"), Beta2: p.float("beta2"), Eps: p.float("eps"),
		WeightDecay: p.float("weight_decay"), BatchSize: p.int("batch_size"), Epochs: p.int("epochs"),
		Schedule: p.str("schedule"), StepSize: p.int("step_size"), Gamma: p.float("gamma"), Patience: p.int("patience"),
	}
	out, outputs := mlp.Identity, 1
	switch {
	case j.tgt.classify && j.k == 2:
		out = mlp.SigmoidOutput
	case j.tgt.classify:
		out, outputs = mlp.Softmax, j.k
	}
	d := j.pipe.NumFeatures()
	tr, err := mlp.NewTrainer(cfg, d, outputs, out, j.spec.Seed)
	if err != nil {
		return nil, err
	}
	tr.SetData(to32(j.x["train"]), to32(j.y["train"]), len(j.splits["train"]))
	if v := j.splits["validation"]; len(v) > 0 {
		tr.SetValidation(to32(j.x["validation"]), to32(j.y["validation"]), len(v))
	}
	if ck != nil {
		st := ck.GetMlp()
		if st == nil {
			return nil, ErrCheckpoint
		}
		if int(st.Epoch) > cfg.Epochs {
			return nil, fmt.Errorf("%w: checkpoint of epoch %d is past the budget of %d epochs", ErrCheckpoint, st.Epoch, cfg.Epochs)
		}
		if err := tr.Restore(mlpStateFromProto(st)); err != nil {
			return nil, err
		}
	}
	save := func(ctx context.Context) error {
		st, err := tr.State()
		if err != nil {
			return err
		}
		return j.checkpoint(ctx, cb, &mlv1.Checkpoint{State: &mlv1.Checkpoint_Mlp{Mlp: mlpStateToProto(st)}})
	}
	for !tr.Done() {
		if ctx.Err() != nil {
			return nil, j.interrupted(ctx, cb, save)
		}
		loss, val, err := tr.RunEpoch()
		if err != nil {
			return nil, err
		}
		j.progress(cb, tr.Epoch(), loss, val)
		// The last epoch is always saved, so a larger budget can extend it.
		if cb.CheckpointEvery > 0 && (tr.Epoch()%cb.CheckpointEvery == 0 || tr.Done()) {
			if err := save(ctx); err != nil {
				return nil, err
			}
		}
	}
	tr.Finish()
	return tr.Net, nil
}

func (j *job) fitGBDT(ctx context.Context, cb Callbacks, ck *mlv1.Checkpoint) (artifact.Estimator, error) {
	p := j.params
	cfg := gbdt.Config{
		Rounds: p.int("rounds"), LearningRate: p.float("learning_rate"), MaxDepth: p.int("max_depth"), MaxLeaves: p.int("max_leaves"),
		MinChildWeight: p.float("min_child_weight"), Lambda: p.float("lambda"), Subsample: p.float("subsample"),
		ColSample: p.float("colsample"), MaxBins: p.int("max_bins"), Patience: p.int("patience"),
	}
	obj := gbdt.Regression
	switch {
	case j.tgt.classify && j.k == 2:
		obj = gbdt.Binary
	case j.tgt.classify:
		obj = gbdt.Multiclass
	}
	d := j.pipe.NumFeatures()
	b, err := gbdt.NewBooster(cfg, obj, j.x["train"], len(j.splits["train"]), d, j.y["train"], j.k, j.spec.Seed)
	if err != nil {
		return nil, err
	}
	if v := j.splits["validation"]; len(v) > 0 {
		b.SetValidation(j.x["validation"], len(v), j.y["validation"])
	}
	if ck != nil {
		st := ck.GetGbdt()
		if st == nil {
			return nil, ErrCheckpoint
		}
		if int(st.Round) > cfg.Rounds {
			return nil, fmt.Errorf("%w: checkpoint of round %d is past the budget of %d rounds", ErrCheckpoint, st.Round, cfg.Rounds)
		}
		if err := b.Restore(gbdtStateFromProto(st)); err != nil {
			return nil, err
		}
	}
	save := func(ctx context.Context) error {
		st, err := b.State()
		if err != nil {
			return err
		}
		return j.checkpoint(ctx, cb, &mlv1.Checkpoint{State: &mlv1.Checkpoint_Gbdt{Gbdt: gbdtStateToProto(st)}})
	}
	for !b.Done() {
		if ctx.Err() != nil {
			return nil, j.interrupted(ctx, cb, save)
		}
		loss, val := b.RunRound()
		j.progress(cb, b.Round(), loss, val)
		if cb.CheckpointEvery > 0 && (b.Round()%cb.CheckpointEvery == 0 || b.Done()) {
			if err := save(ctx); err != nil {
				return nil, err
			}
		}
	}
	b.Finish()
	return b.Model, nil
}

func (j *job) progress(cb Callbacks, step int, loss, val float64) {
	cb.emit(Event{Step: step, Split: "train", Metrics: map[string]float64{"loss": loss}})
	if !math.IsNaN(val) {
		cb.emit(Event{Step: step, Split: "validation", Metrics: map[string]float64{"loss": val}})
	}
}

// interrupted hands a last checkpoint over and returns ctx's error.
func (j *job) interrupted(ctx context.Context, cb Callbacks, save func(context.Context) error) error {
	if cb.OnCheckpoint != nil {
		if err := save(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (j *job) checkpoint(ctx context.Context, cb Callbacks, ck *mlv1.Checkpoint) error {
	if cb.OnCheckpoint == nil {
		return nil
	}
	ck.FormatVersion = checkpointVersion
	ck.Algorithm = j.spec.Algorithm
	ck.Seed = j.spec.Seed
	ck.Fingerprint = j.fp
	b, err := EncodeCheckpoint(ck)
	if err != nil {
		return err
	}
	return cb.OnCheckpoint(ctx, b)
}
