//go:build integration

package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// withFastGateway makes the gateway reconcile and autoscale in test time.
func withFastGateway() harness.Option {
	return func(cfg *app.Config) {
		cfg.Gateway.ReconcileInterval = 100 * time.Millisecond
		cfg.Gateway.StableWindow = 2 * time.Second
		cfg.Gateway.PanicWindow = 500 * time.Millisecond
	}
}

// trainVersion trains a builtin model version and returns its number.
func trainVersion(t *testing.T, c *harness.Cluster, model, dataset, algo string) int64 {
	t.Helper()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(t.Context(), &schedulerv1.SubmitJobRequest{Spec: builtinSpec(model, dataset, algo, nil)})
	require.NoError(t, err)
	job := waitJob(t, sc, sub.Job.Id, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.State, "reason: %s", job.Reason)
	return job.ModelVersion
}

func setAlias(t *testing.T, c *harness.Cluster, model, alias, version string) {
	t.Helper()
	_, err := c.Registry.SetAlias(t.Context(), &registryv1.SetAliasRequest{Model: model, Alias: alias, Version: version})
	require.NoError(t, err)
}

// httpDo sends a request to the HTTP edge and returns the status and body.
func httpDo(t *testing.T, c *harness.Cluster, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.HTTP+path, rd)
	require.NoError(t, err)
	if _, raw := body.([]byte); !raw && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTPClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// eventually polls cond every 50 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-tick.C:
		}
	}
}

// clients runs n closed-loop clients, each calling call again as soon as
// it returns, until call returns false or stop is called; stop waits for
// them.
func clients(n int, call func() bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if !call() {
					return
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// servedIris trains iris (logistic regression) on c and serves it as the
// deployment iris with one replica, ready.
func servedIris(t *testing.T, c *harness.Cluster) {
	t.Helper()
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	trainVersion(t, c, "iris", "iris", "logistic")
	_, err = gatewayv1.NewDeploymentServiceClient(c.Conn).CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{
		Deployment: &gatewayv1.Deployment{Model: "iris@latest", MinReplicas: 1, MaxReplicas: 1}})
	require.NoError(t, err)
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/iris/ready", nil)
		return code == http.StatusOK
	})
}
