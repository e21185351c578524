//go:build integration

package traineragent_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/election"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// TestStaleTermIgnored: an assignment whose term is older than the
// scheduler leader's is not started until the new leader re-stamps it.
func TestStaleTermIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp, err := e.cli.Put(t.Context(), election.Key(schedkeys.Election, 0x694d9a), "sched-b")
	require.NoError(t, err)
	term := resp.Header.Revision
	e.agent("f1", nil)
	run := func(job string, term int64) {
		e.assign(&schedulerv1.Assignment{JobId: job, Node: "f1", Term: term, Spec: &schedulerv1.JobSpec{
			Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "true"}}}})
	}
	run("stale", term-1)
	run("fresh", term)
	e.waitTask("fresh", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 10*time.Second)
	require.Nil(t, e.task("stale", 0), "an assignment of a deposed leader must not start")
	run("stale", term) // the new leader re-stamps it
	st := e.waitTask("stale", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 10*time.Second)
	require.Equal(t, term, st.Term)
}

// TestCodeBundleAndLogs runs a script from a code bundle by a relative
// path and streams its output to bmaas.logs.<job>.<rank>.
func TestCodeBundleAndLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.model("cb")
	e.agent("c1", nil)
	sha := e.bundle(map[string]string{"bin/train.sh": "#!/bin/sh\necho training in $(basename $(pwd))\necho 42 > \"$BMAAS_OUTPUT_DIR/model.pt\"\n"})
	e.assign(&schedulerv1.Assignment{JobId: "jobc", Node: "c1", Term: 1, Spec: &schedulerv1.JobSpec{Model: "cb",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "bin/train.sh", CodeBundleSha256: sha}}}})
	st := e.waitTask("jobc", 0, schedulerv1.TaskState_TASK_STATE_SUCCEEDED, 10*time.Second)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, e.version("cb", st.ModelVersion).Format)

	cons, err := e.bus.JetStream().OrderedConsumer(t.Context(), events.StreamLogs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"bmaas.logs.jobc.0"}})
	require.NoError(t, err)
	var lines []string
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		lines = append(lines, string(m.Data()))
		if string(m.Data()) == "training in code" {
			break
		}
	}
	require.NotEmpty(t, lines)
}

// bundle uploads a tar.gz of files as a code bundle.
func (e *env) bundle(files map[string]string) string {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		require.NoError(e.t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		require.NoError(e.t, err)
	}
	require.NoError(e.t, tw.Close())
	require.NoError(e.t, gz.Close())
	sum := sha256.Sum256(buf.Bytes())
	sha := hex.EncodeToString(sum[:])
	st, err := e.reg.UploadBundle(e.t.Context())
	require.NoError(e.t, err)
	require.NoError(e.t, st.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Header{
		Header: &registryv1.UploadBundleHeader{Filename: "code.tar.gz", Sha256: sha}}}))
	require.NoError(e.t, st.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Chunk{Chunk: buf.Bytes()}}))
	_, err = st.CloseAndRecv()
	require.NoError(e.t, err)
	return sha
}
