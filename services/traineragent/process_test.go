//go:build integration

package traineragent_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/gpu"
	"github.com/bmaas/bmaas/services/traineragent"
)

// envScript checks the runtime contract's variables, writes metrics and
// leaves an ONNX file and a side file in the output directory.
const envScript = `set -eu
test "$BMAAS_JOB_ID" = jobp
test "$BMAAS_HPARAMS" = '{"lr":"0.1"}'
test "${CUDA_VISIBLE_DEVICES-unset}" = "$EXPECT_CUDA"
test "$WORLD_SIZE" = 2 && test "$RANK" = "$EXPECT_RANK" && test "$MASTER_ADDR" = 10.0.0.1 && test "$MASTER_PORT" = 29500
test "$LOCAL_RANK" = 0 && test "$NODE_RANK" = "$EXPECT_RANK"
head -1 "$BMAAS_DATA_DIR/iris.csv" | grep -q sepal_length_cm
test -d "$BMAAS_CHECKPOINT_DIR"
echo "hello from rank $RANK"
echo '{"step":1,"split":"train","loss":0.9}' >> "$BMAAS_METRICS_FILE"
echo '{"step":2,"split":"validation","loss":0.5,"accuracy":0.75}' >> "$BMAAS_METRICS_FILE"
echo onnx > "$BMAAS_OUTPUT_DIR/model.onnx"
echo side > "$BMAAS_OUTPUT_DIR/vocab.txt"
`

func TestProcessEnvMetricsAndOutputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dv := e.dataset("iris")
	e.model("pm")
	e.agent("p1", func(c *traineragent.Config) { c.FakeGPUs = 2 })
	e.agent("p2", nil)
	n := e.waitNode("p1")
	require.Len(t, n.Gpus, 2)
	require.Equal(t, gpu.FakeModel, n.Gpus[1].Model)
	require.True(t, n.Gpus[1].Fake)

	for rank, node := range []string{"p1", "p2"} {
		spec := &schedulerv1.JobSpec{Model: "pm", Workers: 2, Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
			Command: "sh", Args: []string{"-c", envScript}, Env: map[string]string{"EXPECT_RANK": strconv.Itoa(rank), "EXPECT_CUDA": ""},
			Hyperparameters: map[string]string{"lr": "0.1"}, Dataset: "iris"}}}
		a := &schedulerv1.Assignment{JobId: "jobp", Rank: int32(rank), WorldSize: 2, Node: node, Term: 1, Spec: spec,
			MasterAddr: "10.0.0.1", MasterPort: 29500, NodeRank: int32(rank)}
		if rank == 0 { // pinned to the second fake GPU; rank 1 gets none: an empty CUDA_VISIBLE_DEVICES
			a.GpuIndices = []int32{1}
			spec.GetProcess().Env["EXPECT_CUDA"] = "1"
		}
		e.assign(a)
	}
	st := e.waitTask("jobp", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 20*time.Second)
	require.Equal(t, int64(2), st.Step)
	require.Equal(t, 0.75, st.Metrics["validation_accuracy"])
	require.Equal(t, 0.9, st.Metrics["train_loss"])
	require.Zero(t, e.waitTask("jobp", 1, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 20*time.Second).ModelVersion)

	v := e.version("pm", st.ModelVersion)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_ONNX, v.Format)
	require.Equal(t, "model.onnx", v.Filename)
	require.Equal(t, map[string]float64{"validation_loss": 0.5, "validation_accuracy": 0.75}, v.Metrics)
	require.Equal(t, "0.1", v.Hyperparameters["lr"])
	require.Equal(t, &registryv1.Lineage{JobId: "jobp", Dataset: "iris", DatasetVersion: dv}, v.Lineage)
	require.Len(t, v.Labels["bundle_sha256"], 64)
	require.Equal(t, "onnx\n", string(e.download("pm", st.ModelVersion)))
}

func TestProcessMissingCommandFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent("m1", nil)
	e.assign(&schedulerv1.Assignment{JobId: "jobm", Node: "m1", Term: 1, Spec: &schedulerv1.JobSpec{Model: "x",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "no-such-trainer"}}}})
	st := e.waitTask("jobm", 0, schedulerv1.TaskState_TASK_STATE_FAILED, 10*time.Second)
	require.Contains(t, st.Message, `command "no-such-trainer" not found`)
}

// TestProcessNoNetwork: a process task that asks no network reaches
// nothing, not even a port on the node's loopback, and still registers
// its output (the agent uploads it); the same task with the network
// reaches the port.
func TestProcessNoNetwork(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// Exits 0 when what it finds is what $WANT says.
	py := fmt.Sprintf(`import os, socket, sys
s = socket.socket(); s.settimeout(5)
got = "connected" if s.connect_ex(("127.0.0.1", %d)) == 0 else "unreachable"
print(got)
open(os.path.join(os.environ["BMAAS_OUTPUT_DIR"], "model.onnx"), "w").write("onnx")
sys.exit(0 if got == os.environ["WANT"] else 1)`, l.Addr().(*net.TCPAddr).Port)
	e := newEnv(t)
	e.model("nn")
	e.agent("n1", nil)
	for job, noNet := range map[string]bool{"jobisolated": true, "jobnet": false} {
		want := map[bool]string{true: "unreachable", false: "connected"}[noNet]
		e.assign(&schedulerv1.Assignment{JobId: job, Node: "n1", Term: 1, Spec: &schedulerv1.JobSpec{Model: "nn",
			Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/usr/bin/python3",
				Args: []string{"-c", py}, Env: map[string]string{"WANT": want}, NoNetwork: noNet}}}})
		st := e.waitTask(job, 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 20*time.Second)
		// Its output reached the registry all the same: the agent
		// uploads it.
		require.Equal(t, "onnx", string(e.download("nn", st.ModelVersion)), job)
	}
}

// stubborn ignores SIGTERM and starts a grandchild that does too.
const stubborn = `trap '' TERM
sleep 300 &
echo started
wait
`

func (e *env) startStubborn(node, job string) []int {
	return e.startStubbornAt(node, job, filepath.Join(e.t.TempDir(), "pids"))
}

// startStubbornAt runs stubborn on node, appends the pids of its two
// processes to the file pids once both run, and returns them with the
// sandbox's (bwrap's) pids.
func (e *env) startStubbornAt(node, job, pids string) []int {
	e.assign(&schedulerv1.Assignment{JobId: job, Node: node, Term: 1, Spec: &schedulerv1.JobSpec{Model: "x",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/bin/sh", Args: []string{"-c", stubborn},
			Env: map[string]string{"STUBBORN": stubbornMarker(e.t, job)}}}}})
	e.waitTask(job, 0, schedulerv1.TaskState_TASK_STATE_RUNNING, 10*time.Second)
	all, own := waitProcs(e.t, stubbornMarker(e.t, job), 2)
	f, err := os.OpenFile(pids, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(e.t, err)
	for _, p := range own {
		_, err = fmt.Fprintln(f, p)
		require.NoError(e.t, err)
	}
	require.NoError(e.t, f.Close())
	return all
}

// stubbornMarker tells a test's stubborn processes from any other's (in
// this process or another on the machine).
func stubbornMarker(t *testing.T, job string) string {
	return fmt.Sprintf("%d/%s/%s", os.Getpid(), t.Name(), job)
}

// waitProcs polls until n live processes other than bwrap's have marker
// as STUBBORN in their environment; it returns those with bwrap's, and
// those alone. Sandboxed pids differ from the host's, so the test finds
// them here rather than from the script.
func waitProcs(t *testing.T, marker string, n int) (all, own []int) {
	t.Helper()
	require.Eventually(t, func() bool {
		all, own = procsWith("STUBBORN=" + marker)
		return len(own) == n
	}, 10*time.Second, 10*time.Millisecond)
	return all, own
}

// procsWith lists the live processes whose environment holds kv, and
// those of them that are not bwrap.
func procsWith(kv string) (all, own []int) {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil || !strings.Contains("\x00"+string(env), "\x00"+kv+"\x00") || !alive(pid) {
			continue
		}
		all = append(all, pid)
		if comm, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "comm")); strings.TrimSpace(string(comm)) != "bwrap" {
			own = append(own, pid)
		}
	}
	return all, own
}

// alive: the process exists and is not a zombie awaiting its parent.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// gone polls until none of pids is alive.
func gone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, p := range pids {
			if alive(p) {
				return false
			}
		}
		return true
	}, within, 20*time.Millisecond)
}

func TestProcessStopsWhenAssignmentDeleted(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"bwrap", "none"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.agent("s1", func(c *traineragent.Config) { c.Sandbox = mode })
			pids := e.startStubborn("s1", "jobs")
			start := time.Now()
			e.unassign(&schedulerv1.Assignment{JobId: "jobs", Node: "s1"})
			gone(t, pids, 5*time.Second)
			t.Logf("%d processes stopped %s after the assignment was deleted", len(pids), time.Since(start).Round(time.Millisecond))
			require.Equal(t, schedulerv1.TaskState_TASK_STATE_RUNNING, e.task("jobs", 0).State, "nothing reported for a removed assignment")
		})
	}
}

func TestLeaseLossKillsWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent("l1", nil)
	pids := e.startStubborn("l1", "jobl")
	_, lease := e.node("l1")
	_, err := e.cli.Revoke(t.Context(), clientv3.LeaseID(lease))
	require.NoError(t, err)
	gone(t, pids, 3*time.Second)
	require.Eventually(t, func() bool { // registered again under a new lease
		n, l := e.node("l1")
		return n != nil && l != lease
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, schedulerv1.TaskState_TASK_STATE_RUNNING, e.task("jobl", 0).State, "a fenced worker reports nothing")
}

// TestFencedAssignmentRunsAgainIfLeft: an assignment the scheduler left
// unchanged on the node after its lease was lost runs again once the hold
// (two lease TTLs) has passed.
func TestFencedAssignmentRunsAgainIfLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent("h1", func(c *traineragent.Config) { c.LeaseTTL = time.Second })
	pids := e.startStubborn("h1", "jobh")
	_, lease := e.node("h1")
	_, err := e.cli.Revoke(t.Context(), clientv3.LeaseID(lease))
	require.NoError(t, err)
	gone(t, pids, 3*time.Second)
	again, _ := waitProcs(t, stubbornMarker(t, "jobh"), 2)
	require.NotEqual(t, pids, again, "a new run")
	e.unassign(&schedulerv1.Assignment{JobId: "jobh", Node: "h1"})
	gone(t, again, 5*time.Second)
}

// resumeScript counts steps from the restored checkpoint, reporting each
// step before saving it (the agent labels a checkpoint with the newest
// step reported); the first attempt fails after step 3, the second
// finishes at step 5.
const resumeScript = `set -eu
n=0
if [ -f "$BMAAS_CHECKPOINT_DIR/state" ]; then n=$(cat "$BMAAS_CHECKPOINT_DIR/state"); echo "resumed from $n"; fi
start=$n
while [ $n -lt 5 ]; do
  n=$((n+1))
  echo "{\"step\":$n,\"split\":\"train\",\"loss\":0.$n}" >> "$BMAAS_METRICS_FILE"
  echo $n > "$BMAAS_CHECKPOINT_DIR/state.tmp" && mv "$BMAAS_CHECKPOINT_DIR/state.tmp" "$BMAAS_CHECKPOINT_DIR/state"
  if [ "$BMAAS_ATTEMPT" = 0 ] && [ $n -eq 3 ]; then echo "boom at step $n" >&2; exit 3; fi
done
echo "from $start" > "$BMAAS_OUTPUT_DIR/result.txt"
`

func TestProcessCheckpointRestoredOnRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.model("rm")
	e.agent("r1", nil)
	spec := &schedulerv1.JobSpec{Model: "rm", Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{
		Command: "sh", Args: []string{"-c", resumeScript}}}}
	e.assign(&schedulerv1.Assignment{JobId: "jobr", Node: "r1", Term: 1, Spec: spec})
	st := e.waitTask("jobr", 0, schedulerv1.TaskState_TASK_STATE_FAILED, 10*time.Second)
	require.Equal(t, int32(3), st.ExitCode)
	require.Contains(t, st.Message, "boom at step 3")
	require.Equal(t, int64(3), st.CheckpointStep, st.Message)

	e.assign(&schedulerv1.Assignment{JobId: "jobr", Node: "r1", Term: 1, Attempt: 1, Spec: spec})
	require.Eventually(t, func() bool {
		st = e.task("jobr", 0)
		return st.Attempt == 1 && st.State == schedulerv1.TaskState_TASK_STATE_SUCCEEDED
	}, 10*time.Second, 20*time.Millisecond)
	v := e.version("rm", st.ModelVersion)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_OTHER, v.Format)
	require.Equal(t, "from 3\n", string(e.download("rm", st.ModelVersion)))
	require.Equal(t, 0.5, v.Metrics["train_loss"])
}
