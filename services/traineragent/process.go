package traineragent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/sandbox"
)

// taskDirs are a process task's directories (DESIGN.md section 5).
type taskDirs struct {
	cwd, data, output, checkpoint, metrics string
}

// runProcess runs a command as the process runtime contract says and, on
// exit 0, registers what it left in BMAAS_OUTPUT_DIR (rank 0).
func (w *worker) runProcess(sk *sink, rt *schedulerv1.ProcessRuntime) (int64, error) {
	if err := w.s.box.Err(); err != nil {
		return 0, sandboxErr(err)
	}
	d := taskDirs{cwd: w.dir, data: filepath.Join(w.dir, "data"), output: filepath.Join(w.dir, "output"),
		checkpoint: filepath.Join(w.dir, "checkpoint"), metrics: filepath.Join(w.dir, "metrics.jsonl")}
	for _, dir := range []string{d.data, d.output, d.checkpoint} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	dv, ckStep, err := w.fetchProcessInputs(sk, rt, &d)
	if err != nil {
		return 0, err
	}
	path, err := w.lookCommand(rt.Command, d.cwd)
	if err != nil {
		return 0, err
	}
	if err := w.s.box.Own(w.dir); err != nil {
		return 0, fmt.Errorf("give the task directory to the sandbox's user: %w", err)
	}
	lw := &lineWriter{emit: sk.line}
	// What was restored is known before the process can change it.
	cw := newCheckpointWatcher(w, sk, d.checkpoint, ckStep)
	p, err := w.s.box.Start(w.sandboxSpec(rt, d, path, lw))
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", rt.Command, err)
	}
	sk.logf("started %s (pid %d) in %s", path, p.Pid(), d.cwd)
	w.running()
	exited := make(chan struct{})
	go w.killOnStop(p, exited)
	mt := &metricsTailer{path: d.metrics, sk: sk, w: w}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		w.watchProcess(exited, mt, cw)
	}()
	res, err := p.Wait()
	lw.close()
	close(exited)
	<-loopDone
	mt.poll()
	cw.upload(mt.step)
	if w.ctx.Err() != nil {
		return 0, w.ctx.Err()
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it exited 0; a process it left behind held its output open
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg := fmt.Sprintf("%s exited: %s", rt.Command, ee.ProcessState)
			if res.OOMKilled {
				msg = oomReason(res) + "; " + msg
			}
			return 0, &exitError{code: ee.ExitCode(), msg: msg}
		}
		return 0, fmt.Errorf("wait for %s: %w", rt.Command, err)
	}
	sk.logf("%s exited 0", rt.Command)
	if w.a.Rank != 0 || w.a.GetSpec().GetModel() == "" {
		return 0, nil
	}
	return w.registerOutputs(sk, rt, dv, d.output, mt.last)
}

// watchProcess tails the metrics file and uploads changed checkpoints
// until the process exits.
func (w *worker) watchProcess(exited <-chan struct{}, mt *metricsTailer, cw *checkpointWatcher) {
	poll := time.NewTicker(min(250*time.Millisecond, w.s.cfg.FlushInterval))
	defer poll.Stop()
	ck := time.NewTicker(w.s.cfg.CheckpointInterval)
	defer ck.Stop()
	for {
		select {
		case <-exited:
			return
		case <-poll.C:
			mt.poll()
		case <-ck.C:
			mt.poll()
			cw.upload(mt.step)
		}
	}
}

// killOnStop stops the task when the worker is cancelled: SIGTERM to
// its processes, then SIGKILL to all after the grace period; at once when
// fenced.
func (w *worker) killOnStop(p *sandbox.Process, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	case <-w.ctx.Done():
	}
	if w.fenced.Load() {
		p.Kill()
		return
	}
	p.Signal(syscall.SIGTERM)
	t := time.NewTimer(w.grace())
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		p.Kill()
	}
}

// oomReason says that the kernel killed the task for its memory, and how
// much it used of how much it asked for.
func oomReason(res sandbox.Result) string {
	if res.LimitBytes <= 0 {
		return "OOMKilled: out of memory"
	}
	used := "all"
	if res.PeakBytes > 0 { // the kernel may not say (cgroup v2 before Linux 5.19)
		used = mib(res.PeakBytes)
	}
	return fmt.Sprintf("OOMKilled: used %s of %s", used, mib(res.LimitBytes))
}

// mib renders bytes in MiB, rounded.
func mib(b int64) string { return fmt.Sprintf("%d MiB", (b+1<<19)>>20) }

// fetchProcessInputs gets the code bundle, the dataset and the newest
// checkpoint; it returns the dataset version and the checkpoint's step.
func (w *worker) fetchProcessInputs(sk *sink, rt *schedulerv1.ProcessRuntime, d *taskDirs) (*registryv1.DatasetVersion, int64, error) {
	ctx, cancel := context.WithTimeout(w.ctx, fetchTimeout)
	defer cancel()
	reg := w.s.registry()
	switch {
	case rt.CodeBundleSha256 != "":
		d.cwd = filepath.Join(w.dir, "code")
		if err := w.fetchArchive(d.cwd, func(f *os.File) error { return reg.downloadBundle(ctx, rt.CodeBundleSha256, f) }); err != nil {
			return nil, 0, fmt.Errorf("code bundle %s: %w", rt.CodeBundleSha256, err)
		}
		sk.logf("code bundle %s extracted", rt.CodeBundleSha256)
	case rt.Workdir != "":
		if fi, err := os.Stat(rt.Workdir); err != nil || !fi.IsDir() {
			return nil, 0, fmt.Errorf("workdir %s: not a directory on node %s", rt.Workdir, w.s.cfg.Node)
		}
		d.cwd = rt.Workdir
	}
	var dv *registryv1.DatasetVersion
	if rt.Dataset != "" {
		f, err := os.Create(filepath.Join(d.data, rt.Dataset+".csv"))
		if err != nil {
			return nil, 0, err
		}
		dv, err = reg.downloadDataset(ctx, rt.Dataset, rt.DatasetVersion, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, 0, fmt.Errorf("download dataset %s: %w", rt.Dataset, err)
		}
		sk.logf("dataset %s version %d in %s", rt.Dataset, dv.GetVersion(), d.data)
	}
	var step int64
	err := w.fetchArchive(d.checkpoint, func(f *os.File) error {
		cp, err := reg.downloadCheckpoint(ctx, w.a.JobId, f)
		step = cp.GetStep()
		return err
	})
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		return nil, 0, fmt.Errorf("restore checkpoint: %w", err)
	default:
		sk.logf("checkpoint of step %d restored", step)
		w.checkpointed(step)
	}
	return dv, step, nil
}

// lookCommand resolves the command: python and python3 name the
// configured interpreter, a relative path is taken from the work dir, a
// bare name is looked up in the task's PATH.
func (w *worker) lookCommand(command, cwd string) (string, error) {
	switch {
	case command == "":
		return "", errors.New("the process runtime names no command")
	case command == "python" || command == "python3":
		command = w.s.cfg.Python
	case strings.Contains(command, "/") && !filepath.IsAbs(command):
		command = filepath.Join(cwd, command)
	}
	path, err := lookPath(command, w.s.taskPATH())
	if err != nil {
		return "", fmt.Errorf("command %q not found on node %s: %w", command, w.s.cfg.Node, err)
	}
	return path, nil
}

// processEnv is a process task's whole environment: PATH, HOME (the task
// directory), LANG and PYTHONUNBUFFERED, the runtime contract's
// variables, and the spec's own; nothing of the agent's.
func (w *worker) processEnv(rt *schedulerv1.ProcessRuntime, d taskDirs) []string {
	hp := rt.Hyperparameters
	if hp == nil {
		hp = map[string]string{}
	}
	hpJSON, _ := json.Marshal(hp)
	gpus := make([]string, len(w.a.GpuIndices))
	for i, g := range w.a.GpuIndices {
		gpus[i] = strconv.Itoa(int(g))
	}
	env := []string{"PATH=" + w.s.taskPATH(), "HOME=" + w.dir, "LANG=C.UTF-8", "PYTHONUNBUFFERED=1",
		"BMAAS_JOB_ID=" + w.a.JobId, "BMAAS_ATTEMPT=" + strconv.Itoa(int(w.a.Attempt)), "BMAAS_HPARAMS=" + string(hpJSON),
		"BMAAS_DATA_DIR=" + d.data, "BMAAS_OUTPUT_DIR=" + d.output, "BMAAS_CHECKPOINT_DIR=" + d.checkpoint,
		"BMAAS_METRICS_FILE=" + d.metrics, "CUDA_VISIBLE_DEVICES=" + strings.Join(gpus, ",")}
	if ws := max(1, w.a.WorldSize); ws > 1 {
		env = append(env, "MASTER_ADDR="+w.a.MasterAddr, "MASTER_PORT="+strconv.Itoa(int(w.a.MasterPort)),
			"WORLD_SIZE="+strconv.Itoa(int(ws)), "RANK="+w.rank(), "LOCAL_RANK="+strconv.Itoa(int(w.a.LocalRank)),
			"NODE_RANK="+strconv.Itoa(int(w.a.NodeRank)))
	}
	for k, v := range rt.Env {
		env = append(env, k+"="+v)
	}
	return env
}
