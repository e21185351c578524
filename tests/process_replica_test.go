//go:build integration

package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// echoServer is tests/testdata/v2echo.py as a process server, copied into
// a directory of its own (the server's read-only workdir); tag marks its
// process, readyFile (in that directory) makes it ready.
type echoServer struct {
	dir, tag, readyFile string
}

func newEchoServer(t *testing.T) echoServer {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	src, err := os.ReadFile(filepath.Join("testdata", "v2echo.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "v2echo.py"), src, 0o644))
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return echoServer{dir: dir, tag: hex.EncodeToString(b), readyFile: filepath.Join(dir, "ready")}
}

func (e echoServer) server(probePath string) *schedulerv1.ProcessServer {
	return &schedulerv1.ProcessServer{Command: "/usr/bin/python3", Workdir: e.dir,
		Args:      []string{"v2echo.py", "--port={{.HTTPPort}}", "--ready-file=" + e.readyFile, "--tag={{.Params.tag}}"},
		Protocols: []string{"v2-rest"},
		ReadinessProbe: &schedulerv1.ReadinessProbe{HttpPath: probePath, Period: durationpb.New(50 * time.Millisecond),
			StartupTimeout: durationpb.New(3 * time.Second)}}
}

// pid is the host pid of the server's python process and its HTTP port,
// from its command line; 0 when it is not running.
func (e echoServer) pid(t *testing.T) (pid int, port string) {
	t.Helper()
	pid, args := findProcess(t, func(args, _ []string) bool {
		return strings.HasPrefix(filepath.Base(args[0]), "python") && slices.Contains(args, "--tag="+e.tag)
	})
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--port="); ok {
			port = v
		}
	}
	return pid, port
}

// findProcess is the first host process whose command line and
// environment match, with its command line; 0 when none does.
func findProcess(t *testing.T, match func(args, env []string) bool) (int, []string) {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, ent := range ents {
		p, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil || len(cmd) == 0 {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if match(args, strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")) {
			return p, args
		}
	}
	return 0, nil
}

// startProcessReplicaCluster runs the registry, the scheduler and the
// trainer agent (no gateway: the test is the replica's only client) and
// registers a one-file model.
func startProcessReplicaCluster(t *testing.T) (*harness.Cluster, schedulerv1.SchedulerServiceClient, int64) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bwrap (Debian's bubblewrap; .ci/run installs it)")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	c := harness.Start(t, func(cfg *app.Config) {
		cfg.Targets = []string{app.TargetRegistry, app.TargetScheduler, app.TargetTrainerAgent}
	})
	v := uploadVersion(t, c, "echo", registryv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED, []byte("echo weights"))
	return c, schedulerv1.NewSchedulerServiceClient(c.Conn), v
}

func submitReplica(t *testing.T, sc schedulerv1.SchedulerServiceClient, deployment string, v int64, s *schedulerv1.ProcessServer, params map[string]string) string {
	t.Helper()
	resp, err := sc.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "echo",
		Resources: &schedulerv1.Resources{CpuMillis: 100, MemoryBytes: 256 << 20},
		Runtime: &schedulerv1.JobSpec_Serving{Serving: &schedulerv1.ServingRuntime{Deployment: deployment, Version: v,
			Runtime: "v2echo", Server: s, Parameters: params}}}})
	require.NoError(t, err)
	return resp.Job.Id
}

// endpointOf reads the replica's endpoint record; nil when there is none.
func endpointOf(t *testing.T, c *harness.Cluster, deployment, job string) *gatewayv1.Endpoint {
	t.Helper()
	resp, err := c.EtcdClient(t).Get(t.Context(), endpointkeys.Key(deployment, job))
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return nil
	}
	ep, err := endpointkeys.Decode(resp.Kvs[0].Value)
	require.NoError(t, err)
	return ep
}

func getJob(t *testing.T, sc schedulerv1.SchedulerServiceClient, id string) *schedulerv1.Job {
	t.Helper()
	resp, err := sc.GetJob(t.Context(), &schedulerv1.GetJobRequest{Id: id})
	require.NoError(t, err)
	return resp.Job
}

// A process server replica: its endpoint appears only once its probe
// passes, with its HTTP address, protocols and token; the server runs
// under the serving contract (the model in BMAAS_MODEL_DIR, the token it
// checks); killed, it is deregistered, started again in place, counted
// in the job's task_restarts, and its endpoint comes back.
func TestProcessReplicaServesRestartsAndComesBack(t *testing.T) {
	t.Parallel()
	c, sc, v := startProcessReplicaCluster(t)
	es := newEchoServer(t)
	s := es.server("/v2/health/ready")
	s.ReadinessProbe.StartupTimeout = durationpb.New(time.Minute)
	id := submitReplica(t, sc, "echo", v, s, map[string]string{"tag": es.tag})

	// Running but not ready: no endpoint, the job not yet running.
	var pid int
	var port string
	eventually(t, 30*time.Second, "the server process", func() bool {
		pid, port = es.pid(t)
		return pid != 0 && port != ""
	})
	eventually(t, 10*time.Second, "the server answering", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/v2/health/live")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized // it asks for the replica's token
	})
	require.Nil(t, endpointOf(t, c, "echo", id), "an endpoint before the probe passed")
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	require.NoError(t, err)
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	require.Equal(t, "echo", env["BMAAS_MODEL_NAME"])
	require.Equal(t, strconv.FormatInt(v, 10), env["BMAAS_MODEL_VERSION"])
	require.Equal(t, port, env["BMAAS_HTTP_PORT"])
	require.NotEmpty(t, env["BMAAS_GRPC_PORT"])
	require.NotEqual(t, port, env["BMAAS_GRPC_PORT"])
	require.Equal(t, `{"tag":"`+es.tag+`"}`, env["BMAAS_PARAMS"])
	require.Contains(t, env, "CUDA_VISIBLE_DEVICES")
	require.Empty(t, env["CUDA_VISIBLE_DEVICES"], "no GPUs assigned")
	require.NotContains(t, env, "BMAAS_DATA_DIR", "nothing of the agent's")
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SCHEDULED, getJob(t, sc, id).State)

	require.NoError(t, os.WriteFile(es.readyFile, nil, 0o644))
	var ep *gatewayv1.Endpoint
	eventually(t, 30*time.Second, "the endpoint", func() bool {
		ep = endpointOf(t, c, "echo", id)
		return ep != nil
	})
	require.Equal(t, []string{"v2-rest"}, ep.Protocols)
	require.Equal(t, "127.0.0.1:"+port, ep.HttpAddress)
	require.Empty(t, ep.LaneAddress)
	require.NotEmpty(t, ep.Token)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_RUNNING, waitJobState(t, sc, id, schedulerv1.JobState_JOB_STATE_RUNNING).State)

	out := echoInfer(t, ep)
	require.Equal(t, "echo weights", out.Parameters["model"])
	require.Equal(t, "x_out", out.Outputs[0].Name)

	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	var next int
	eventually(t, 60*time.Second, "the server started again", func() bool {
		next, _ = es.pid(t)
		return next != 0 && next != pid
	})
	j := waitJobCond(t, sc, id, func(j *schedulerv1.Job) bool { return j.TaskRestarts == 1 })
	require.Equal(t, schedulerv1.JobState_JOB_STATE_RUNNING, j.State)
	eventually(t, 30*time.Second, "the endpoint back", func() bool {
		back := endpointOf(t, c, "echo", id)
		return back != nil && back.HttpAddress == ep.HttpAddress
	})
	require.Equal(t, "echo weights", echoInfer(t, ep).Parameters["model"])
	require.Contains(t, jobLogs(t, sc, id), "; restart 1 in 1s")
}

// A probe that never passes fails the replica with the probe's last
// answer, its process stopped; a command that does not exist fails it
// naming runtime.server.command; a server that exits before its first
// readiness fails it with its exit.
func TestProcessReplicaFailures(t *testing.T) {
	t.Parallel()
	_, sc, v := startProcessReplicaCluster(t)
	es := newEchoServer(t)
	require.NoError(t, os.WriteFile(es.readyFile, nil, 0o644))
	nope := submitReplica(t, sc, "nope", v, es.server("/nope"), map[string]string{"tag": es.tag})
	missing := es.server("/v2/health/ready")
	missing.Command = "/no/such/server"
	lost := submitReplica(t, sc, "lost", v, missing, map[string]string{"tag": "none"})
	quits := es.server("/v2/health/ready")
	quits.Command, quits.Args = "/bin/sh", []string{"-c", "echo cannot load >&2; exit 3"}
	quit := submitReplica(t, sc, "quits", v, quits, nil)

	j := waitJob(t, sc, nope, time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, j.State, "reason: %s", j.Reason)
	t.Logf("reason: %s", strings.SplitN(j.Reason, "\n", 2)[0])
	require.Contains(t, j.Reason, "readiness probe GET /nope: 404 Not Found after 3s")
	eventually(t, 10*time.Second, "the server stopped", func() bool { p, _ := es.pid(t); return p == 0 })

	j = waitJob(t, sc, lost, time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, j.State, "reason: %s", j.Reason)
	t.Logf("reason: %s", strings.SplitN(j.Reason, "\n", 2)[0])
	require.Contains(t, j.Reason, "runtime.server.command")
	require.Contains(t, j.Reason, "/no/such/server")

	// A server that exits before it was ever ready fails the replica (no
	// restarts): its exit and its last words.
	j = waitJob(t, sc, quit, time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, j.State, "reason: %s", j.Reason)
	require.Contains(t, j.Reason, "server exited with status 3")
	require.Contains(t, j.Reason, "cannot load")
	require.Zero(t, j.TaskRestarts)
}

type echoOutput struct {
	Parameters map[string]string `json:"parameters"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs"`
}

// echoInfer calls the replica as the gateway does (its token), and
// checks that it refuses a call without the token.
func echoInfer(t *testing.T, ep *gatewayv1.Endpoint) echoOutput {
	t.Helper()
	url := "http://" + ep.HttpAddress + "/v2/models/" + ep.Deployment + "/infer"
	body := []byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1.5]}]}`)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ep.Token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var out echoOutput
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func waitJobState(t *testing.T, sc schedulerv1.SchedulerServiceClient, id string, s schedulerv1.JobState) *schedulerv1.Job {
	t.Helper()
	return waitJobCond(t, sc, id, func(j *schedulerv1.Job) bool { return j.State == s })
}

func waitJobCond(t *testing.T, sc schedulerv1.SchedulerServiceClient, id string, cond func(*schedulerv1.Job) bool) *schedulerv1.Job {
	t.Helper()
	var j *schedulerv1.Job
	eventually(t, 60*time.Second, "job "+id, func() bool {
		j = getJob(t, sc, id)
		return cond(j)
	})
	return j
}
