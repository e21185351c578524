package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakePlatformRegistry adds datasets by name and code bundles to the fake
// registry.
type fakePlatformRegistry struct {
	*fakeRegistry
	dsets   map[string]*registryv1.Dataset
	bundles map[string][]byte
}

func (f *fakePlatformRegistry) addDataset(name string, version int64, cols ...string) {
	st := &commonv1.DatasetStats{Rows: 10}
	for _, c := range cols {
		st.Columns = append(st.Columns, &commonv1.ColumnStats{Name: c, Kind: commonv1.ValueKind_VALUE_KIND_NUMERIC})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dsets[name] = &registryv1.Dataset{Name: name, LatestVersion: version,
		Latest: &registryv1.DatasetVersion{Dataset: name, Version: version, Stats: st}}
}

func (f *fakePlatformRegistry) GetDataset(_ context.Context, r *registryv1.GetDatasetRequest) (*registryv1.GetDatasetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dsets[r.GetName()]; ok {
		return &registryv1.GetDatasetResponse{Dataset: d}, nil
	}
	return nil, status.Errorf(codes.NotFound, "dataset %q not found", r.GetName())
}

func (f *fakePlatformRegistry) GetDatasetVersion(_ context.Context, r *registryv1.GetDatasetVersionRequest) (*registryv1.GetDatasetVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dsets[r.GetDataset()]; ok && r.GetVersion() == "1" {
		return &registryv1.GetDatasetVersionResponse{Version: &registryv1.DatasetVersion{Dataset: d.Name, Version: 1,
			Stats: d.GetLatest().GetStats()}}, nil
	}
	return nil, status.Errorf(codes.NotFound, "dataset %s version %s not found", r.GetDataset(), r.GetVersion())
}

func (f *fakePlatformRegistry) UploadBundle(s grpc.ClientStreamingServer[registryv1.UploadBundleRequest, registryv1.UploadBundleResponse]) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	var data bytes.Buffer
	for {
		msg, err := s.Recv()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		data.Write(msg.GetChunk())
	}
	sum := sha256.Sum256(data.Bytes())
	if hex.EncodeToString(sum[:]) != first.GetHeader().GetSha256() {
		return status.Error(codes.InvalidArgument, "sha256 mismatch")
	}
	f.mu.Lock()
	f.bundles[first.GetHeader().GetSha256()] = data.Bytes()
	f.mu.Unlock()
	return s.SendAndClose(&registryv1.UploadBundleResponse{Bundle: &registryv1.Bundle{
		Sha256: first.GetHeader().GetSha256(), Filename: first.GetHeader().GetFilename()}})
}

func TestTrainBuiltinDefaultsAndWait(t *testing.T) {
	t.Parallel()
	g, reg, sch := startPlatform(t)
	reg.addDataset("breast-cancer", 3, "mean_radius", "texture", "target")
	sch.script(nil,
		&schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_RUNNING, Step: 4, Metrics: map[string]float64{"train_loss": 0.3}},
		&schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_SUCCEEDED, ModelVersion: 1, Metrics: map[string]float64{"train_loss": 0.3}})
	out, stderr, err := run(t, g, "train", "--dataset", "breast-cancer", "--model", "bc", "--algorithm", "logistic",
		"--param", "C=0.5", "--cpu", "500m", "--memory", "512Mi", "--label", "team=ml", "--wait")
	require.NoError(t, err)
	require.Contains(t, stderr, "model \"bc\" created\n")
	require.Contains(t, stderr, "job job-1: RUNNING\njob job-1: SUCCEEDED\n")
	require.Contains(t, out, "Model version:   1\n")
	require.Contains(t, out, "METRIC       VALUE\ntrain_loss   0.3\n", "the final job's metrics")

	spec := sch.jobs[0].GetSpec()
	b := spec.GetBuiltin()
	require.Equal(t, "target", b.GetTargetColumn(), "the last column")
	require.EqualValues(t, 3, b.GetDatasetVersion(), "the latest version, pinned")
	require.Equal(t, map[string]string{"C": "0.5"}, b.GetHyperparameters())
	require.EqualValues(t, 500, spec.GetResources().GetCpuMillis())
	require.EqualValues(t, 512<<20, spec.GetResources().GetMemoryBytes())
	require.Equal(t, map[string]string{"team": "ml"}, spec.GetLabels())

	// The model exists now; a failing run exits non-zero with the job's reason.
	sch.script(nil, &schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_FAILED, Reason: "invalid training data: one class"})
	_, stderr, err = run(t, g, "train", "--dataset", "breast-cancer", "--model", "bc", "--algorithm", "gbdt", "--wait")
	require.EqualError(t, err, "job job-2 FAILED: invalid training data: one class")
	require.NotContains(t, stderr, "created")

	_, _, err = run(t, g, "train", "--dataset", "breast-cancer", "--model", "fresh", "--algorithm", "linear", "--target", "nope")
	require.ErrorContains(t, err, `--target "nope" is not a column of dataset breast-cancer@3 (columns: mean_radius, texture, target)`)
	require.NotContains(t, reg.models, "fresh", "a bad job creates no model")
	_, _, err = run(t, g, "train", "--dataset", "missing", "--model", "bc", "--algorithm", "linear")
	require.EqualError(t, err, `NotFound: dataset "missing" not found`)
}

func TestTrainUnschedulableDoesNotHang(t *testing.T) {
	t.Parallel()
	g, reg, sch := startPlatform(t)
	reg.addDataset("iris", 1, "a", "species")
	sch.script(nil, &schedulerv1.Job{State: schedulerv1.JobState_JOB_STATE_QUEUED, Reason: "Unschedulable: needs 8 GPUs, largest node has 4"})
	_, _, err := run(t, g, "train", "--dataset", "iris@1", "--model", "m", "--algorithm", "mlp", "--gpus", "8", "--wait")
	require.ErrorContains(t, err, "job job-1 cannot be placed: Unschedulable: needs 8 GPUs, largest node has 4")
	require.EqualValues(t, 1, sch.jobs[0].GetSpec().GetBuiltin().GetDatasetVersion())
}

func TestTrainProcessUploadsBundle(t *testing.T) {
	t.Parallel()
	g, reg, sch := startPlatform(t)
	reg.addDataset("bc", 2, "x", "y")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train.py"), []byte("print('hi')\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "__pycache__"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "__pycache__", "x.pyc"), []byte("junk"), 0o644))

	out, stderr, err := run(t, g, "-o", "json", "train", "--model", "torch", "--dataset", "bc", "--command", "python3",
		"--bundle", dir, "--param", "epochs=3", "--target", "y", "--seed", "7", "--env", "A=1", "--gpus", "1",
		"--gpu-model", "H100", "--workers", "2", "--termination-grace", "90s", "--", "train.py", "--verbose")
	require.NoError(t, err)
	require.Contains(t, stderr, "1 files")
	require.Contains(t, out, `"command": "python3"`)
	require.EqualValues(t, 90, sch.jobs[0].GetSpec().GetTerminationGraceSeconds())
	p := sch.jobs[0].GetSpec().GetProcess()
	require.Equal(t, []string{"train.py", "--verbose"}, p.GetArgs())
	require.Equal(t, map[string]string{"epochs": "3", "target": "y", "seed": "7"}, p.GetHyperparameters())
	require.EqualValues(t, 2, p.GetDatasetVersion())
	require.False(t, p.GetNoNetwork(), "the network unless --no-network")
	data := reg.bundles[p.GetCodeBundleSha256()]
	require.NotEmpty(t, data, "the bundle was uploaded under the digest the job names")
	require.Equal(t, []string{"train.py"}, tarNames(t, data))
}

func tarNames(t *testing.T, data []byte) []string {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
}

func TestPackBundleIsDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pkg", ".git"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pkg", "util.py"), []byte("x = 1\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pkg", ".git", "HEAD"), []byte("ref"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train.py"), []byte("import pkg\n"), 0o755))
	require.NoError(t, os.Symlink("train.py", filepath.Join(dir, "link.py")))
	var a, b bytes.Buffer
	n, err := packBundle(dir, &a)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "train.py"), time.Unix(1e6, 0), time.Unix(1e6, 0)))
	_, err = packBundle(dir, &b)
	require.NoError(t, err)
	require.Equal(t, a.Bytes(), b.Bytes(), "times are not packed")
	require.Equal(t, []string{"pkg/", "pkg/util.py", "train.py"}, tarNames(t, a.Bytes()))
}

func TestTrainFlagValidation(t *testing.T) {
	t.Parallel()
	g, reg, sch := startPlatform(t)
	reg.addDataset("d", 1, "x", "y")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--algorithm", "logistic", "--dataset", "d"}, ""},
		{[]string{"--command", "python3", "--workdir", "/srv", "--", "train.py"}, ""},
		{[]string{"--command", "python3", "--workdir", "/srv", "--no-network", "--", "train.py"}, ""},
		{[]string{"--algorithm", "logistic"}, "--dataset is required for a builtin job"},
		{[]string{"--dataset", "d"}, "give --algorithm for a builtin job or --command for a process job"},
		{[]string{"--algorithm", "svm", "--dataset", "d"}, `unknown algorithm "svm"`},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--param", "C=-1"}, `param "C"`},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--param", "depth=3"}, `param "depth": unknown`},
		{[]string{"--algorithm", "mlp", "--dataset", "d", "--param", "epochs=ten"}, `param "epochs"`},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--command", "python3"}, "not both"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--bundle", "."}, "need --command"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--", "x.py"}, "need --command"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--no-network"}, "--no-network and arguments after -- need --command"},
		{[]string{"--algorithm", "logistic", "--dataset", "d@x"}, `version "x" must be a number or latest`},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--test-fraction", "1"}, "--test-fraction must be in [0, 1)"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--test-fraction", "0.6", "--validation-fraction", "0.4"}, "must leave rows"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--workers", "0"}, "--workers must be at least 1"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--cpu", "lots"}, `--cpu "lots"`},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--memory", "1Gb"}, `--memory "1Gb"`},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--gpu-model", "H100"}, "--gpu-model needs --gpus"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--job-timeout", "-1s"}, "must not be negative"},
		{[]string{"--algorithm", "logistic", "--dataset", "d", "--termination-grace", "-1s"}, "--termination-grace must not be negative"},
		{[]string{"--command", "python3", "--test-fraction", "0.1"}, "are for builtin jobs"},
		{[]string{"--command", "python3", "--bundle", ".", "--workdir", "/srv"}, "not both"},
		{[]string{"--command", "python3", "--workdir", "srv"}, "must be an absolute path"},
		{[]string{"--command", "python3", "--bundle", "/nonexistent/dir"}, "--bundle: stat /nonexistent/dir"},
		{[]string{"--command", "python3", "--bundle", ".", "--", "missing_script.py"}, "missing_script.py is not in the bundle"},
		{[]string{"--command", "python3", "--env", "NOVALUE"}, `--env "NOVALUE": expected key=value`},
	} {
		args := append([]string{"train", "--model", "m"}, tc.args...)
		_, _, err := run(t, g, args...)
		if tc.want == "" {
			require.NoError(t, err, args)
			continue
		}
		require.ErrorContains(t, err, tc.want, args)
		var ue *usageError
		require.ErrorAs(t, err, &ue, "a usage error: %v", args)
	}
	isolated := 0
	for _, j := range sch.jobs {
		if j.GetSpec().GetProcess().GetNoNetwork() {
			isolated++
		}
	}
	require.Equal(t, 1, isolated, "--no-network reaches the job's spec")
	_, _, err := run(t, g, "train", "--algorithm", "logistic", "--dataset", "d")
	require.EqualError(t, err, "--model is required: the model the result is registered into")
}
