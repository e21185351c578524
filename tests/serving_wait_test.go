//go:build integration

package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// onSmallNode makes the cluster's one node offer 2 CPUs, as a small
// machine does.
func onSmallNode() harness.Option {
	return func(cfg *app.Config) { cfg.TrainerAgent.CPUMillis = 2000 }
}

// trainedIris uploads iris and trains a logistic regression of it as the
// model iris.
func trainedIris(t *testing.T, c *harness.Cluster) {
	t.Helper()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")
}

// TestReplicasLeaveRoomForTraining: on a 2-CPU node two deployments of
// default resources are ready and a training job still runs (each
// replica used to reserve a whole CPU, and the job stayed QUEUED).
func TestReplicasLeaveRoomForTraining(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), onSmallNode())
	ctx := t.Context()
	trainedIris(t, c)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	for _, name := range []string{"iris-a", "iris-b"} {
		_, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
			Name: name, Model: "iris@latest", MinReplicas: 1, MaxReplicas: 1}})
		require.NoError(t, err)
	}
	for _, name := range []string{"iris-a", "iris-b"} {
		eventually(t, time.Minute, name+" ready", func() bool {
			code, _ := httpDo(t, c, "GET", "/v2/models/"+name+"/ready", nil)
			return code == http.StatusOK
		})
	}
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: builtinSpec("iris", "iris", "logistic", nil)})
	require.NoError(t, err)
	var job *schedulerv1.Job
	eventually(t, 30*time.Second, "training placed beside two replicas", func() bool {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		require.NoError(t, err)
		job = j.Job
		return job.State != schedulerv1.JobState_JOB_STATE_QUEUED
	})
	job = waitJob(t, sc, sub.Job.Id, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
}

// TestPredictWithoutReadyReplicaSaysWhy: a deployment whose replica no
// node can hold shows the scheduler's reason in its status, and a
// request answers at once, Unavailable (503) with that reason, instead
// of waiting for its deadline.
func TestPredictWithoutReadyReplicaSaysWhy(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), onSmallNode(), func(cfg *app.Config) {
		cfg.Gateway.RequestTimeout = 20 * time.Second
	})
	ctx := t.Context()
	trainedIris(t, c)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@latest", MinReplicas: 1, MaxReplicas: 1, Resources: &schedulerv1.Resources{CpuMillis: 64000}}})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "the deployment says why it waits", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		require.NoError(t, err)
		return strings.Contains(d.Deployment.GetStatus().GetMessage(), "Unschedulable")
	})

	body := map[string]any{"inputs": []any{map[string]any{"name": "input", "datatype": "FP64", "shape": []int{1, 4},
		"data": []float64{5.1, 3.5, 1.4, 0.2}}}}
	start := time.Now()
	code, b := httpDo(t, c, "POST", "/v2/models/iris/infer", body)
	require.Equal(t, http.StatusServiceUnavailable, code, string(b))
	require.Contains(t, string(b), `deployment \"iris\" has no ready replica`)
	require.Contains(t, string(b), "Unschedulable")
	require.Less(t, time.Since(start), 5*time.Second, "answered at once")

	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	start = time.Now()
	_, err = ic.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: "iris",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 4},
			Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}}})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "Unschedulable")
	require.Less(t, time.Since(start), 5*time.Second, "answered at once")
}

// TestScaleFromZeroHoldIsBoundedWithReason: a request to a deployment at
// zero is held while its replica starts; when the replica cannot start,
// the hold ends at the cold-start bound with the reason.
func TestScaleFromZeroHoldIsBoundedWithReason(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), onSmallNode(), func(cfg *app.Config) {
		cfg.Gateway.ColdStartTimeout = 3 * time.Second
	})
	ctx := t.Context()
	trainedIris(t, c)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@latest", MinReplicas: 0, MaxReplicas: 1, Autoscaling: true, ScaleToZeroSeconds: 1,
		Resources: &schedulerv1.Resources{CpuMillis: 64000}}})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "the deployment at zero", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		require.NoError(t, err)
		return d.Deployment.GetState() == "IDLE"
	})
	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = ic.ModelInfer(rctx, &inference.ModelInferRequest{ModelName: "iris",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 4},
			Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}}})
	held := time.Since(start)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "Unschedulable")
	require.GreaterOrEqual(t, held, 2*time.Second, "held while scaling from zero")
	require.Less(t, held, 10*time.Second, "the hold is bounded by the cold-start timeout")
}

// TestScaleMinZeroGoesToZero: `deploy scale --min 0` on a running
// deployment (min_replicas 0, no idle time named) scales it to zero after
// the gateway's idle time, and a request brings it back.
func TestScaleMinZeroGoesToZero(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway(), func(cfg *app.Config) { cfg.Gateway.ScaleToZeroAfter = 2 * time.Second })
	ctx := t.Context()
	servedIris(t, c)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	// As `deploy scale --min 0` sends it: the field named, no etag (the
	// reconciler writes status into the same object, so an etag read a
	// moment ago may already be stale).
	up, err := dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{
		Deployment: &gatewayv1.Deployment{Name: "iris", MinReplicas: 0},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"min_replicas"}}})
	require.NoError(t, err)
	require.Equal(t, int64(2), up.Deployment.ScaleToZeroSeconds, "the gateway's idle time")
	eventually(t, 30*time.Second, "scaled to zero", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		require.NoError(t, err)
		return d.Deployment.State == "IDLE" && d.Deployment.Status.GetReadyReplicas() == 0
	})
	body := map[string]any{"inputs": []any{map[string]any{"name": "input", "datatype": "FP64", "shape": []int{1, 4},
		"data": []float64{5.1, 3.5, 1.4, 0.2}}}}
	code, b := httpDo(t, c, "POST", "/v2/models/iris/infer", body)
	require.Equal(t, http.StatusOK, code, string(b))
}
