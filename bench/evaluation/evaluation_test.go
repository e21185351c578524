// Package evaluation measures an evaluation of 100,000 rows through a
// serving runtime (the evaluator's one-replica deployment, rows sent in
// batches through the gateway) against the in-process native evaluator,
// on the same model: a logistic regression of the breast cancer data,
// trained by the native engine (which matches scikit-learn) and, as ONNX,
// examples/models/logreg-v1.onnx (scikit-learn's, C=1, standardised).
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/evaluation/
package evaluation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/tests/harness"
)

const rows = 100_000

func BenchmarkEvaluate100kRows(b *testing.B) {
	c := harness.Start(b)
	ctx := context.Background()
	src, err := os.ReadFile("../../examples/datasets/breast_cancer.csv")
	if err != nil {
		b.Fatal(err)
	}
	upload(b, c, "bc", src)
	upload(b, c, "bc-100k", repeatRows(src, rows))
	for _, m := range []string{"bc-native", "bc-onnx"} {
		if _, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: m}}); err != nil {
			b.Fatal(err)
		}
	}
	native := trainNative(b, c)
	onnx := uploadONNX(b, c, header(src))
	ec := evaluatorv1.NewEvaluatorServiceClient(c.Conn)
	evaluate := func(model string, version int64) (*evaluatorv1.Evaluation, time.Duration) {
		start := time.Now()
		ev, err := ec.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
			Model: model, ModelVersion: version, Dataset: "bc-100k"}})
		if err != nil {
			b.Fatalf("evaluate %s: %v", model, err)
		}
		return ev.Evaluation, time.Since(start)
	}
	var tn, ts time.Duration
	var en, es *evaluatorv1.Evaluation
	for b.Loop() {
		var d time.Duration
		en, d = evaluate("bc-native", native)
		tn += d
		es, d = evaluate("bc-onnx", onnx)
		ts += d
	}
	if en.Rows != rows || es.Rows != rows {
		b.Fatalf("rows evaluated: native %d, served %d, want %d", en.Rows, es.Rows, rows)
	}
	if d := math.Abs(en.Metrics["accuracy"] - es.Metrics["accuracy"]); d > 0.02 {
		b.Fatalf("the two evaluations disagree: accuracy %g (native) and %g (ONNX)", en.Metrics["accuracy"], es.Metrics["accuracy"])
	}
	n := float64(b.N)
	b.ReportMetric(rows*n/tn.Seconds(), "native-rows/s")
	b.ReportMetric(rows*n/ts.Seconds(), "served-rows/s")
	b.ReportMetric(tn.Seconds()/ts.Seconds(), "served/native")
	b.Logf("accuracy native %.4f, served %.4f; served runs on %s", en.Metrics["accuracy"], es.Metrics["accuracy"], es.RunsOn)
}

func header(csv []byte) []string {
	line, _, _ := bytes.Cut(csv, []byte("\n"))
	return strings.Split(strings.TrimSpace(string(line)), ",")
}

// repeatRows is the data rows of csv repeated to n rows, under its header.
func repeatRows(csv []byte, n int) []byte {
	head, body, _ := bytes.Cut(csv, []byte("\n"))
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	var out bytes.Buffer
	out.Write(head)
	out.WriteByte('\n')
	for i := range n {
		out.Write(lines[i%len(lines)])
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func upload(b *testing.B, c *harness.Cluster, name string, data []byte) {
	sum := sha256.Sum256(data)
	up, err := c.Registry.UploadDataset(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: name, Sha256: hex.EncodeToString(sum[:])}}})
	for off := 0; off < len(data); off += 1 << 20 {
		_ = up.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: data[off:min(off+1<<20, len(data))]}})
	}
	if _, err := up.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
}

func trainNative(b *testing.B, c *harness.Cluster) int64 {
	ctx := context.Background()
	sc := schedulerv1.NewSchedulerServiceClient(c.Conn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "bc-native",
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "bc",
			TargetColumn: "target", Hyperparameters: map[string]string{"C": "1"}, Preprocessing: []string{"scale=standard"}}}}})
	if err != nil {
		b.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(100 * time.Millisecond) {
		j, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: sub.Job.Id})
		if err != nil {
			b.Fatal(err)
		}
		switch j.Job.State {
		case schedulerv1.JobState_JOB_STATE_SUCCEEDED:
			return j.Job.ModelVersion
		case schedulerv1.JobState_JOB_STATE_FAILED:
			b.Fatalf("training failed: %s", j.Job.Reason)
		}
	}
	b.Fatal("training did not end in 2 minutes")
	return 0
}

// uploadONNX registers logreg-v1.onnx with the signature a process job
// would give it: the 30 feature columns and the classes of its
// probabilities.
func uploadONNX(b *testing.B, c *harness.Cluster, cols []string) int64 {
	data, err := os.ReadFile("../../examples/models/logreg-v1.onnx")
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	sig := &commonv1.Signature{
		Inputs:  []*commonv1.TensorSpec{{Name: "input", Datatype: commonv1.DataType_DATA_TYPE_FP32, Shape: []int64{-1, int64(len(cols) - 1)}, Columns: cols[:len(cols)-1]}},
		Outputs: []*commonv1.TensorSpec{{Name: "probabilities", Shape: []int64{-1, 2}, Labels: []string{"0", "1"}, Kind: commonv1.OutputKind_OUTPUT_KIND_PROBABILITIES}}}
	st, err := c.Registry.CreateModelVersion(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	_ = st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{Header: &registryv1.CreateModelVersionHeader{
		Model: "bc-onnx", Sha256: hex.EncodeToString(sum[:]),
		Spec: &registryv1.ModelVersionSpec{Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, Signature: sig, Filename: "logreg-v1.onnx"}}}})
	_ = st.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data}})
	resp, err := st.CloseAndRecv()
	if err != nil {
		b.Fatal(fmt.Errorf("upload the ONNX version: %w", err))
	}
	return resp.Version.Version
}
