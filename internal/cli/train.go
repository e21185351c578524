package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/spf13/cobra"
)

const trainLong = `Submit a training job. The result is registered as a new version of --model
(the model is created when it does not exist yet).

A builtin job trains with the native engine on a dataset of the registry
(dataset and model names are lowercase letters, digits and '-'):

  bmaas dataset upload breast-cancer examples/datasets/breast_cancer.csv
  bmaas train --dataset breast-cancer --model bc --algorithm logistic --param C=1 --wait

  --target defaults to the dataset's last column; --param takes the algorithm's
  hyperparameters (see bmaas ml train --help), validated before submitting.

A process job runs a command on the node (a PyTorch script, say). Give the
program with --command and its arguments with --arg or after "--":

  bmaas train --model bc-torch --dataset breast-cancer --bundle examples/pytorch \
      --command python3 --param epochs=20 --gpus 1 --wait -- train.py --verbose

  --bundle DIR   packs DIR as a tar.gz, uploads it to the registry and runs the
                 command inside it on the node;
  --workdir PATH runs it in PATH, a directory that already exists on the node.
  The process sees BMAAS_JOB_ID, BMAAS_HPARAMS (the --param values as JSON, with
  --target and --seed when given), BMAAS_DATA_DIR (the --dataset CSV),
  BMAAS_OUTPUT_DIR, BMAAS_CHECKPOINT_DIR, BMAAS_METRICS_FILE, CUDA_VISIBLE_DEVICES
  and, with --workers N > 1, MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK.
  --no-network runs it with a loopback interface only: its dataset, code and
  outputs pass through files, so a training script needs no network.

--wait follows the job until it ends, with a live progress line on stderr, prints
the final job and exits 0 only when it SUCCEEDED. Without --wait the submitted
job is printed; follow it later with bmaas job watch ID.`

// trainFlags are the flags of `bmaas train`.
type trainFlags struct {
	name, model, dataset, target, algorithm string
	params, labels, selector                []string
	testFraction, valFraction               float64
	seed                                    int64

	command, bundle, workdir string
	args, env                []string
	noNetwork                bool

	cpu, memory, gpuModel, pool      string
	gpus, workers, priority, retries int32
	checkpointEvery                  int32
	preemptible, wait                bool
	jobTimeout, grace                time.Duration
}

func trainCommand(g *globals) *cobra.Command {
	var tf trainFlags
	cmd := &cobra.Command{
		Use:   "train --model NAME {--algorithm ALG --dataset NAME[@VERSION] | --command PROG [--bundle DIR | --workdir PATH]} [flags] [-- ARGS...]",
		Short: "Submit a training job (builtin algorithm or any process) and optionally wait for it",
		Long:  trainLong,
		RunE: func(cmd *cobra.Command, a []string) error {
			spec, err := tf.spec(a, cmd.Flags().Changed("seed"))
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				spec.Project = g.project // settled by the connection: --project, BMAAS_PROJECT or the context's
				return submitTraining(ctx, g, cmd, c, &tf, spec)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&tf.name, "name", "", "a name for the job (optional)")
	f.StringVar(&tf.model, "model", "", "the model to register the result into (required)")
	f.StringVar(&tf.dataset, "dataset", "", "training data: a registry dataset NAME[@VERSION] (default version: latest)")
	f.StringVar(&tf.target, "target", "", "the column to predict (default: the dataset's last column)")
	f.StringVar(&tf.algorithm, "algorithm", "", "builtin algorithm: "+strings.Join(train.Algorithms(), ", "))
	f.StringArrayVar(&tf.params, "param", nil, "hyperparameter key=value (repeatable)")
	f.Float64Var(&tf.testFraction, "test-fraction", 0, "builtin: fraction of rows held out for test metrics (0: 0.2)")
	f.Float64Var(&tf.valFraction, "validation-fraction", 0,
		"builtin: fraction held out for validation (0: 0.1 for mlp and gbdt, none otherwise)")
	f.Int64Var(&tf.seed, "seed", 0, "random seed of the split and the training")
	f.StringVar(&tf.command, "command", "", "process job: the program to run (python3, /usr/bin/torchrun, ...)")
	f.StringArrayVar(&tf.args, "arg", nil, "process job: one argument of the command (repeatable; or give them after --)")
	f.StringArrayVar(&tf.env, "env", nil, "process job: environment variable K=V (repeatable)")
	f.StringVar(&tf.bundle, "bundle", "", "process job: a local directory to upload and run in")
	f.StringVar(&tf.workdir, "workdir", "", "process job: a directory on the node to run in")
	f.BoolVar(&tf.noNetwork, "no-network", false, "process job: run with no network at all (a loopback interface only; one worker)")
	f.StringVar(&tf.cpu, "cpu", "1", "CPU per worker: cores (2, 0.5) or millicores (500m)")
	f.StringVar(&tf.memory, "memory", "1Gi", "memory per worker (512Mi, 1Gi, 2G)")
	f.Int32Var(&tf.gpus, "gpus", 0, "GPUs per worker")
	f.StringVar(&tf.gpuModel, "gpu-model", "", "only GPUs whose model contains this (e.g. H100)")
	f.Int32Var(&tf.workers, "workers", 1, "workers of one gang, placed all at once")
	f.Int32Var(&tf.priority, "priority", 0, "higher runs first; may preempt lower-priority preemptible jobs")
	f.BoolVar(&tf.preemptible, "preemptible", false, "let higher-priority jobs preempt this one (it resumes from a checkpoint)")
	f.StringVar(&tf.pool, "pool", "", "only nodes of this pool")
	f.StringArrayVar(&tf.selector, "node-selector", nil, "only nodes with label key=value (repeatable)")
	f.Int32Var(&tf.retries, "max-restarts", 0, "restarts after a failure before the job is FAILED")
	f.Int32Var(&tf.checkpointEvery, "checkpoint-interval", 0, "checkpoint every N epochs or rounds (0: 1)")
	f.DurationVar(&tf.jobTimeout, "job-timeout", 0, "fail the job when it runs longer than this (0: no limit)")
	f.DurationVar(&tf.grace, "termination-grace", 0,
		"time between SIGTERM and SIGKILL when a task stops, to save a checkpoint (0: the agent's default, 3s; at most 1h)")
	f.StringArrayVar(&tf.labels, "label", nil, "job label key=value (repeatable)")
	f.BoolVar(&tf.wait, "wait", false, "follow the job until it ends; exit 0 only when it SUCCEEDED")
	return cmd
}

// spec checks the flags and builds the job spec; the dataset version and
// the default target are filled in later from the registry.
func (tf *trainFlags) spec(positional []string, seedSet bool) (*schedulerv1.JobSpec, error) {
	if tf.model == "" {
		return nil, usageErrorf("--model is required: the model the result is registered into")
	}
	params, err := parseKV("param", tf.params)
	if err != nil {
		return nil, err
	}
	spec := &schedulerv1.JobSpec{Name: tf.name, Model: tf.model, Workers: tf.workers, Priority: tf.priority,
		Preemptible: tf.preemptible, Pool: tf.pool, MaxRestarts: tf.retries, CheckpointInterval: tf.checkpointEvery,
		TimeoutSeconds:          int64(tf.jobTimeout.Round(time.Second) / time.Second),
		TerminationGraceSeconds: int32(min(tf.grace, 2*time.Hour).Round(time.Second) / time.Second)}
	if spec.Labels, err = parseKV("label", tf.labels); err != nil {
		return nil, err
	}
	if spec.NodeSelector, err = parseKV("node-selector", tf.selector); err != nil {
		return nil, err
	}
	if spec.Resources, err = tf.resources(); err != nil {
		return nil, err
	}
	switch {
	case tf.workers < 1:
		return nil, usageErrorf("--workers must be at least 1")
	case tf.retries < 0 || tf.checkpointEvery < 0 || tf.jobTimeout < 0 || tf.grace < 0:
		return nil, usageErrorf("--max-restarts, --checkpoint-interval, --job-timeout and --termination-grace must not be negative")
	case tf.command != "" && tf.algorithm != "":
		return nil, usageErrorf("give --algorithm (a builtin job) or --command (a process job), not both")
	case tf.command == "" && tf.algorithm == "":
		return nil, usageErrorf("give --algorithm for a builtin job or --command for a process job")
	}
	name, version, err := splitDataset(tf.dataset)
	if err != nil {
		return nil, err
	}
	if tf.command != "" {
		return spec, tf.processSpec(spec, positional, params, seedSet, name, version)
	}
	if len(positional) > 0 || len(tf.args) > 0 || len(tf.env) > 0 || tf.bundle != "" || tf.workdir != "" || tf.noNetwork {
		return nil, usageErrorf("--arg, --env, --bundle, --workdir, --no-network and arguments after -- need --command")
	}
	if name == "" {
		return nil, usageErrorf("--dataset is required for a builtin job")
	}
	if _, err := train.ParseParams(tf.algorithm, params); err != nil {
		return nil, usageErrorf("%v", err)
	}
	for flag, v := range map[string]float64{"test-fraction": tf.testFraction, "validation-fraction": tf.valFraction} {
		if v < 0 || v >= 1 {
			return nil, usageErrorf("--%s must be in [0, 1), not %g", flag, v)
		}
	}
	if tf.testFraction+tf.valFraction >= 1 {
		return nil, usageErrorf("--test-fraction plus --validation-fraction must leave rows to train on")
	}
	spec.Runtime = &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: tf.algorithm,
		Hyperparameters: params, Dataset: name, DatasetVersion: version, TargetColumn: tf.target,
		TestFraction: tf.testFraction, ValidationFraction: tf.valFraction, Seed: tf.seed}}
	return spec, nil
}

func (tf *trainFlags) processSpec(spec *schedulerv1.JobSpec, positional []string, params map[string]string,
	seedSet bool, dataset string, version int64) error {
	if tf.testFraction != 0 || tf.valFraction != 0 {
		return usageErrorf("--test-fraction and --validation-fraction are for builtin jobs; pass your own with --param")
	}
	if tf.bundle != "" && tf.workdir != "" {
		return usageErrorf("give --bundle (uploaded) or --workdir (on the node), not both")
	}
	args := append(append([]string(nil), tf.args...), positional...)
	if tf.bundle != "" {
		if err := checkBundle(tf.bundle, args); err != nil {
			return err
		}
	}
	if tf.workdir != "" && !filepath.IsAbs(tf.workdir) {
		return usageErrorf("--workdir %q must be an absolute path on the node", tf.workdir)
	}
	env, err := parseKV("env", tf.env)
	if err != nil {
		return err
	}
	if params == nil && (tf.target != "" || seedSet) {
		params = map[string]string{}
	}
	if _, ok := params["target"]; !ok && tf.target != "" {
		params["target"] = tf.target
	}
	if _, ok := params["seed"]; !ok && seedSet {
		params["seed"] = strconv.FormatInt(tf.seed, 10)
	}
	spec.Runtime = &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: tf.command,
		Args: args, Env: env, Workdir: tf.workdir, NoNetwork: tf.noNetwork,
		Hyperparameters: params, Dataset: dataset, DatasetVersion: version}}
	return nil
}

func (tf *trainFlags) resources() (*schedulerv1.Resources, error) {
	cpu, err := parseCPU(tf.cpu)
	if err != nil {
		return nil, err
	}
	mem, err := parseMemory(tf.memory)
	if err != nil {
		return nil, err
	}
	if tf.gpus < 0 {
		return nil, usageErrorf("--gpus must not be negative")
	}
	if tf.gpuModel != "" && tf.gpus == 0 {
		return nil, usageErrorf("--gpu-model needs --gpus")
	}
	return &schedulerv1.Resources{CpuMillis: cpu, MemoryBytes: mem, Gpus: tf.gpus, GpuModel: tf.gpuModel}, nil
}

// splitDataset parses NAME[@VERSION]; version 0 means the latest.
func splitDataset(s string) (string, int64, error) {
	if s == "" {
		return "", 0, nil
	}
	name, ref, err := datasetRef(s, "")
	if err != nil || ref == Latest {
		return name, 0, err
	}
	v, err := strconv.ParseInt(ref, 10, 64)
	if err != nil || v < 1 {
		return "", 0, usageErrorf("--dataset %q: version must be a positive number or latest", s)
	}
	return name, v, nil
}

// submitTraining pins the dataset version, creates the model if needed,
// uploads the code bundle, submits the job, then prints it or, with
// --wait, follows it to its end.
func submitTraining(ctx context.Context, g *globals, cmd *cobra.Command, c *client, tf *trainFlags,
	spec *schedulerv1.JobSpec) error {
	if err := resolveDataset(ctx, c, spec); err != nil {
		return err
	}
	created, err := ensureModel(ctx, c, spec.GetModel())
	if err != nil {
		return err
	}
	if created && g.output == "table" {
		fmt.Fprintf(cmd.ErrOrStderr(), "model %q created\n", spec.GetModel())
	}
	if tf.bundle != "" {
		b, err := uploadBundle(ctx, cmd, c, tf.bundle)
		if err != nil {
			return err
		}
		spec.GetProcess().CodeBundleSha256 = b.GetSha256()
	}
	cctx, cancel := c.call(ctx)
	resp, err := c.scheduler().SubmitJob(cctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	cancel()
	if err != nil {
		return err
	}
	if !tf.wait {
		return printJob(g.printer(cmd.OutOrStdout()), resp.GetJob())
	}
	return waitJob(ctx, g, cmd, c, resp.GetJob())
}
