//go:build integration

package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

// restLogs reads GET path as newline-delimited JSON and returns the log
// lines of its {"result": {"lines": [...]}} objects.
func restLogs(t *testing.T, c *harness.Cluster, path string) []string {
	t.Helper()
	code, body := httpDo(t, c, "GET", path, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var msg struct {
			Result struct {
				Lines []string `json:"lines"`
			} `json:"result"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &msg), sc.Text())
		require.Nil(t, msg.Error, sc.Text())
		lines = append(lines, msg.Result.Lines...)
	}
	return lines
}

// TestJobLogsOverREST: a job's log lines over REST, all or the last ones.
func TestJobLogsOverREST(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: builtinSpec("iris", "iris", "logistic", nil)})
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, waitJob(t, sc, sub.Job.Id, 2*time.Minute).State)

	var all []string
	eventually(t, 30*time.Second, "the job's last log line", func() bool {
		all = restLogs(t, c, "/v1/jobs/"+sub.Job.Id+"/logs")
		return len(all) > 1 && strings.Contains(all[len(all)-1], "registered iris version 1")
	})
	require.True(t, strings.HasPrefix(all[0], "[bmaas] attempt 1 of job "+sub.Job.Id+", rank 0, on node "), "every attempt's log starts with it: %q", all[0])
	require.Contains(t, all[1], "dataset iris version 1")
	last := restLogs(t, c, "/v1/jobs/"+sub.Job.Id+"/logs?tail_lines=1")
	require.Equal(t, all[len(all)-1:], last)
	// Following a finished job's logs ends with them.
	require.Equal(t, all, restLogs(t, c, "/v1/jobs/"+sub.Job.Id+"/logs?follow=true"))

	code, body := httpDo(t, c, "GET", "/v1/jobs/nope/logs", nil)
	require.Equal(t, http.StatusNotFound, code, string(body))
}
