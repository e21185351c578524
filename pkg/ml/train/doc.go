// Package train is the entry point of the native ML engine: it turns a
// Spec (algorithm, target, hyperparameters as text, split fractions, seed)
// and a dataset.Frame into an artifact.Model.
//
//	f, err := dataset.ReadFile("iris.csv", dataset.ReadOptions{})
//	spec := train.Spec{Algorithm: "mlp", Target: "target", Seed: 1,
//		Params: map[string]string{"hidden": "64,64", "lr": "0.01"}}
//	m, err := train.Run(ctx, spec, f, train.Callbacks{
//		OnEvent:         func(e train.Event) { ... },            // per epoch/round, and final metrics
//		OnCheckpoint:    func(ctx context.Context, b []byte) error { ... },
//		CheckpointEvery: 5,
//	})
//	err = m.Save("iris.bmaas")
//
// Run splits the rows (stratified for classification) into train,
// validation and test, fits the preprocessing pipeline on the training
// rows, trains, and evaluates the artifact on every split through the
// artifact's own predictor. Resume(ctx, spec, data, checkpoint, cb)
// continues a run from a checkpoint and ends bit for bit where the
// uninterrupted run would; the checkpoint carries a fingerprint of the
// spec and the data and is refused for another run. The one difference
// allowed is a larger budget (epochs for mlp, rounds for gbdt): the last
// epoch or round is always checkpointed, so a finished run can be
// extended, and extending a run of N to M equals the run of M when
// nothing else depends on the budget (a constant, step or exponential
// learning-rate schedule; not cosine). Everything is deterministic under
// Spec.Seed.
//
// # Errors
//
// ErrUnknownAlgorithm, ErrInvalidParam (the message names the parameter:
// unknown, wrong type, out of range), ErrInvalidData (no rows, unknown
// target, missing values without imputation naming row and column, a
// single class, a singular design for OLS naming the column) and
// ErrCheckpoint. All are input errors (InvalidArgument at an API edge).
//
// # Algorithms and parameters
//
// Every algorithm takes the preprocessing parameters: impute (none, mean,
// median, most_frequent, constant; default none), impute_value (0), scale
// (none, standard, minmax; default standard, none for gbdt),
// pca_components (0) or pca_variance (0). Categorical features are one-hot
// encoded (unseen categories give all zeros).
//
//   - linear: alpha (0: ordinary least squares by QR; > 0: ridge)
//   - ridge: alpha (default 1)
//   - logistic: C (1; the L2 penalty is |w|²/2C on the summed log loss),
//     max_iter. Binary by Newton's method, multinomial by L-BFGS.
//   - mlp: hidden (64,64), activation (relu|tanh|sigmoid|gelu), optimizer
//     (adam|sgd), lr (0.001), momentum (0.9), beta1, beta2, eps,
//     weight_decay (0), batch_size (32), epochs (100), schedule
//     (constant|step|exponential|cosine), step_size (10), gamma (0.5),
//     patience (10; early stopping on the validation loss, 0: off).
//   - gbdt: rounds (100), learning_rate (0.1), max_depth (3), max_leaves
//     (0: 2^max_depth), min_child_weight (1), lambda (1), subsample (1),
//     colsample (1), max_bins (256), patience (10).
//
// The task defaults to classification for logistic, regression for
// linear and ridge, and for mlp and gbdt classification when the target is
// categorical or holds at most 20 distinct integers; Spec.Task overrides.
package train
