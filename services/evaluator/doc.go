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
// more in scheduling than in work.
//
// Every other format (ONNX, PyTorch, archives) is evaluated through its
// serving runtime (served.go): the evaluator creates a deployment of
// exactly that version with one replica, named eval-<model>-v<N>-<random>
// (the gateway picks the runtime by the version's format, the scheduler a
// node, a GPU one when the runtime asks for it), waits for its replica
// (evaluator.served-timeout), sends the dataset's rows through the gateway
// in batches of evaluator.served-batch-rows over KServe v2 gRPC, whatever
// the replica speaks, scores the answers as above, and deletes the
// deployment. The version's signature says which columns make its input
// tensor and, for a classifier, its class labels; the target is the
// version's `target` label or hyperparameter, else the one dataset column
// that is not an input. runs_on names the replica's job. A native version
// over a dataset above evaluator.max-dataset-bytes is still refused.
//
// A job's test split: a builtin job's rows as pkg/ml/train cut them; a
// process job's rows as its script held them out with
// bmaas.train.holdout, for the validation_fraction (0.2) and seed (0)
// hyperparameters of the job (pkg/ml/train.Holdout, the same rule).
//
// # Automatic evaluation
//
// With evaluator.auto-evaluate, every version that a training job
// produced (NATIVE, or of another format with a signature naming its
// input columns) is evaluated on its job's test split and on the datasets of
// its model's policy, then goes through the policy's promotion (decision
// source "auto"). Two paths start it; both first claim the version's
// auto-evaluation key, so it is evaluated once, even when they race:
//
//   - The version.ready event is a hint. Every replica consumes
//     bmaas.model.*.version.ready (durable consumer "evaluator-versions",
//     shared by the replicas); an event for a version that is done, or
//     claimed by another call, is acked at once. The registry publishes
//     the event asynchronously and only logs a lost one.
//   - The leader's sweep is the guarantee. On gaining leadership and
//     every evaluator.auto-sweep (30 s) the leader pages through the
//     registry's models and versions (its gRPC API) and evaluates the
//     READY, eligible versions without a key, at most 16 a sweep. It
//     leaves a version younger than one sweep period to its event, and
//     one older than the event stream's retention (7 days) alone, as its
//     event could not be delivered either.
//
// A try that fails deletes its claim: the event is redelivered, and the
// sweep tries again. Refusals that a retry would not fix (a job whose
// test split is unknown, a dataset too large) are stored as FAILED
// evaluations and count as done. A claim lives under its claimer's lease
// (evaluator.leader-ttl), so a replica that dies mid-evaluation leaves
// the version to the next sweep.
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
//	/bmaas/v1/auto-evaluations/<model>/<N>   JSON {"state","time"}: "running" while one
//	                                         call evaluates version N (under that call's
//	                                         lease), "done" (no lease) once its automatic
//	                                         evaluations and promotion decision are stored.
//	/bmaas/v1/evaluation-policies/<model>    EvaluationPolicy (datasets, promotion).
//	/bmaas/v1/decisions/<model>/<id>         Decision, one per promotion decision.
//	/bmaas/v1/experiments/<id>               Experiment.
//	/bmaas/v1/experiment-states/<id>         the searcher's state (JSON), written by
//	                                         the leader with the trials it creates, in
//	                                         one transaction fenced by its term.
//	/bmaas/v1/trials/<experiment>/<trial>    Trial.
//	/bmaas/v1/leader/evaluator/<lease>       the election keys (pkg/election).
//	/bmaas/v1/alert-rules/<name>             AlertRule: the spec written by the API,
//	                                         its state by the leader (compare-and-swap
//	                                         on the key, fenced by its term).
//	/bmaas/v1/alerts/<id>                    Alert, one per episode of a rule that
//	                                         fired (ids sort by time), with its links.
//
// # Monitoring (the monitor and alerting packages)
//
// Monitoring data is not control-plane state and stays out of etcd. Every
// replica follows the gateway's payload log (BMAAS_PAYLOADS) and the
// feedback stream (BMAAS_FEEDBACK, which SubmitFeedback writes) from the
// monitor's horizon, keeping recent windows and the predictions that
// feedback can still join in memory; a restarted or new leader rebuilds
// them by replaying both streams. The leader alone writes each window's
// result to the JetStream bucket BMAAS_MONITOR (<deployment>.<start>),
// records the nodes' use on BMAAS_NODE_USAGE, sets the bmaas_monitor_*
// gauges, and evaluates the alert rules every alert interval.
//
// # Events
//
// The evaluator acts on etcd and registry state, never on an event alone.
// It consumes bmaas.model.*.version.ready as a hint (see Automatic
// evaluation: the leader's sweep finds what a lost event would have
// caused); experiments are driven from etcd (watch and poll) and consume
// no event. It publishes bmaas.evaluation.<id>.completed,
// bmaas.model.<name>.promoted, bmaas.model.<name>.promotion.rejected,
// bmaas.experiment.<id>.<state> and bmaas.alert.<rule>.firing|resolved,
// after the change is committed; a lost one is logged (an alert's is
// also a link of kind error on the alert).
package evaluator
