//go:build integration

package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestProcessReplicasAutoscaleAndCanary: a deployment on a process
// runtime (a v2 REST script) scales as a native one does: idle at zero,
// a request at zero held until a replica is ready and answered, up to
// its maximum under load, back to zero when idle; and a canary version
// answers its share of the requests, over REST and gRPC (bridged).
func TestProcessReplicasAutoscaleAndCanary(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bwrap (Debian's bubblewrap; .ci/run installs it)")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	v1 := uploadVersion(t, c, "echo", registryv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED, []byte("weights one"))
	v2 := uploadVersion(t, c, "echo", registryv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED, []byte("weights two"))
	es := newEchoServer(t)
	require.NoError(t, os.WriteFile(es.readyFile, nil, 0o644))
	s := es.server("/v2/health/ready")
	s.ReadinessProbe.StartupTimeout = durationpb.New(time.Minute)
	_, err := gatewayv1.NewRuntimeServiceClient(c.Conn).CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: &gatewayv1.Runtime{
		Name: "v2echo", Formats: []*gatewayv1.RuntimeFormat{{Name: "other"}}, Server: s, TerminationGraceSeconds: 2}})
	require.NoError(t, err)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "echo", Model: refOf("echo", v1), MinReplicas: 0, MaxReplicas: 2, TargetConcurrency: 1, Autoscaling: true,
		ScaleToZeroSeconds: 1, Parameters: map[string]string{"tag": es.tag},
		Resources: &schedulerv1.Resources{CpuMillis: 100, MemoryBytes: 256 << 20}}})
	require.NoError(t, err)
	status := func() (*gatewayv1.DeploymentStatus, string) {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "echo"})
		require.NoError(t, err)
		return d.Deployment.GetStatus(), d.Deployment.GetState()
	}
	eventually(t, 30*time.Second, "idle at zero", func() bool {
		st, state := status()
		return state == "IDLE" && st.GetReadyReplicas() == 0
	})

	body := map[string]any{"inputs": []any{map[string]any{"name": "x", "datatype": "FP32", "shape": []int{1}, "data": []float64{1}}}}
	weights := func() string {
		code, b := httpDo(t, c, http.MethodPost, "/v2/models/echo/infer", body)
		require.Equal(t, http.StatusOK, code, "%s", b)
		var out echoOutput
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
		return out.Parameters["model"]
	}
	start := time.Now()
	require.Equal(t, "weights one", weights(), "a request at zero is held, then answered")
	t.Logf("answered from zero in %s", time.Since(start).Round(time.Millisecond))

	// Under load (four clients, one request in flight per replica
	// wanted): up to the maximum, over REST and bridged gRPC.
	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	greq := &inference.ModelInferRequest{ModelName: "echo", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1}}}}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i%2 == 0 {
					_, err = ic.ModelInfer(ctx, greq)
				} else if code, b := httpDo(t, c, http.MethodPost, "/v2/models/echo/infer", body); code != http.StatusOK {
					err = &httpStatusError{code, string(b)}
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, time.Minute, "two ready replicas under load", func() bool {
		st, _ := status()
		return st.GetReadyReplicas() == 2
	})
	close(stop)
	wg.Wait()
	require.Empty(t, failures, "failed requests while scaling up")
	eventually(t, time.Minute, "back to zero when idle", func() bool {
		st, state := status()
		return state == "IDLE" && st.GetReadyReplicas() == 0 && len(st.GetReplicas()) == 0
	})

	// A canary: two replicas of version 1, one of version 2 taking half
	// the requests.
	_, err = dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "echo",
		MinReplicas: 2, CanaryVersion: v2, CanaryPercent: 50},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"min_replicas", "canary_version", "canary_percent"}}})
	require.NoError(t, err)
	eventually(t, time.Minute, "the canary's replica ready beside the stable ones", func() bool {
		st, _ := status()
		by := map[int64]int{}
		for _, r := range st.GetReplicas() {
			if r.Ready {
				by[r.Version]++
			}
		}
		return by[v1] == 2 && by[v2] == 1
	})
	seen := map[string]int{}
	for range 60 {
		seen[weights()]++
	}
	t.Logf("answers by version: %v", seen)
	require.Positive(t, seen["weights one"])
	require.Positive(t, seen["weights two"], "the canary answers its share")
}

type httpStatusError struct {
	code int
	body string
}

func (e *httpStatusError) Error() string { return http.StatusText(e.code) + ": " + e.body }
