// Package evaluator is the evaluator service: evaluations of model
// versions, automatic evaluation of every trained version, per-model
// promotion policies with a decision log, and experiments (hyperparameter
// searches) whose trials are scheduler jobs.
//
// # Where evaluations run
//
// NATIVE versions (the Go engine's artifacts: linear, logistic, mlp, gbdt)
// evaluate inside the evaluator process: the artifact and the dataset are
// streamed from the registry, predicted with artifact.Predictor and scored
// with pkg/ml/metrics. They are small (the registry caps them) and fast
// (tens of thousands of rows per second on one core), so a job would cost
// more in scheduling than in work. ONNX and PyTorch versions, and datasets
// above evaluator.max-dataset-bytes, are meant to be evaluated by a job on
// an agent (a GPU node where the model needs one), which reports the same
// Evaluation; this release answers FailedPrecondition for them.
//
// # Experiments
//
// The leader drives each live experiment in passes: it reads the
// searcher's state and the trials, turns the trials' jobs into searcher
// events, and commits the searcher's actions (new or continued trials)
// in one transaction fenced by its term; a trial's job is submitted only
// after its trial is committed, with labels naming experiment, trial and
// sequence number, and is looked up by them first, so a new leader adopts
// a job its predecessor submitted and never submits a second. A pass runs
// when a job or an experiment changes (etcd watch), again at once after a
// pass that committed trials to submit, and every evaluator.poll.
//
// A trial is a builtin job (template.algorithm) or a process job
// (template.process). ASHA and Hyperband continue a builtin trial with a
// job whose resume_from_job is the trial's previous job: the agent starts
// it from that job's last checkpoint (the engine accepts a checkpoint for
// a smaller epochs/rounds budget), so a continuation trains only the
// epochs it adds and epochs_used counts each epoch once.
//
// # Keys (values are bmaas.evaluator.v1 messages)
//
//	/bmaas/v1/evaluations/<id>               Evaluation. Manual ones get a ULID;
//	                                         automatic ones <model>-v<N>-<dataset>-v<M>[-test],
//	                                         created only if absent, so a redelivered
//	                                         event evaluates nothing twice.
//	/bmaas/v1/evaluation-policies/<model>    EvaluationPolicy (datasets, promotion).
//	/bmaas/v1/decisions/<model>/<id>         Decision, one per promotion decision.
//	/bmaas/v1/experiments/<id>               Experiment.
//	/bmaas/v1/experiment-states/<id>         the searcher's state (JSON), written by
//	                                         the leader with the trials it creates, in
//	                                         one transaction fenced by its term.
//	/bmaas/v1/trials/<experiment>/<trial>    Trial.
//	/bmaas/v1/leader/evaluator/<lease>       the election keys (pkg/election).
//
// # Events
//
// The evaluator consumes bmaas.model.*.version.ready (durable consumer
// "evaluator-versions", shared by the replicas) and publishes
// bmaas.evaluation.<id>.completed, bmaas.model.<name>.promoted,
// bmaas.model.<name>.promotion.rejected and bmaas.experiment.<id>.<state>.
package evaluator
