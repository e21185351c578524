package evaluator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// A version that does not evaluate in the evaluator (ONNX, PyTorch, an
// archive: any format a serving runtime serves) is evaluated through its
// serving runtime: the evaluator creates a deployment of exactly that
// version with one replica (the gateway picks the runtime by the version's
// format, and the scheduler a node, a GPU one when the runtime asks for
// it), waits for the replica, sends the rows through the gateway in
// batches over KServe v2 gRPC (whatever the replica speaks), scores the
// answers as an in-process evaluation scores its predictions, and deletes
// the deployment.

// servedSpec is what the version's signature says about its input and
// output: the one input tensor with its columns, and for a classifier the
// class labels.
type servedSpec struct {
	input    string
	datatype string
	columns  []string
	target   string
	labels   []string
}

// servedSpecOf reads the signature of v, and the target column: the
// version's label or hyperparameter `target`, else the one column of f
// that is not an input.
func servedSpecOf(v *registryv1.ModelVersion, f *dataset.Frame) (*servedSpec, error) {
	ins := v.GetSignature().GetInputs()
	if len(ins) != 1 || len(ins[0].GetColumns()) == 0 {
		return nil, apierr.Precondition("%s@%d has no signature naming its input columns (signature.json beside the artifact, or the version's signature): the evaluator cannot tell which columns to send", v.Model, v.Version)
	}
	s := &servedSpec{input: ins[0].Name, datatype: "FP32", columns: ins[0].Columns}
	if s.input == "" {
		s.input = "input"
	}
	if ins[0].Datatype == commonv1.DataType_DATA_TYPE_FP64 {
		s.datatype = "FP64"
	}
	if outs := v.GetSignature().GetOutputs(); len(outs) == 1 {
		s.labels = outs[0].GetLabels()
	}
	s.target = v.GetLabels()["target"]
	if s.target == "" {
		s.target = v.GetHyperparameters()["target"]
	}
	for _, c := range s.columns {
		if f.ColIndex(c) < 0 {
			return nil, apierr.Invalid("dataset", "column %q that the model's signature needs is missing (the dataset has %v)", c, f.Names())
		}
	}
	if s.target == "" {
		var rest []string
		for _, n := range f.Names() {
			if !contains(s.columns, n) {
				rest = append(rest, n)
			}
		}
		if len(rest) != 1 {
			return nil, apierr.Invalid("dataset", "cannot tell the target column: the columns besides the model's inputs are %v (label the version with target=<column>)", rest)
		}
		s.target = rest[0]
	}
	if f.ColIndex(s.target) < 0 {
		return nil, apierr.Invalid("dataset", "target column %q is missing (the dataset has %v)", s.target, f.Names())
	}
	return s, nil
}

// evaluateServed evaluates v on f through a deployment of v.
func (e *Evaluator) evaluateServed(ctx context.Context, v *registryv1.ModelVersion, f *dataset.Frame) (*outcome, string, error) {
	s, err := servedSpecOf(v, f)
	if err != nil {
		return nil, "", err
	}
	if f.NumRows() == 0 {
		return nil, "", apierr.Invalid("dataset", "no rows to evaluate on")
	}
	dc, ic, err := e.gateway()
	if err != nil {
		return nil, "", fmt.Errorf("evaluate %s@%d through its serving runtime: %w", v.Model, v.Version, err)
	}
	name := servedName(v)
	d, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: name, Model: fmt.Sprintf("%s@%d", v.Model, v.Version), MinReplicas: 1, MaxReplicas: 1}})
	if err != nil {
		return nil, "", fmt.Errorf("evaluate %s@%d through its serving runtime: %w", v.Model, v.Version, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := dc.DeleteDeployment(dctx, &gatewayv1.DeleteDeploymentRequest{Name: name}); err != nil {
			e.log.Warn("delete the evaluation's deployment", "deployment", name, "err", err)
		}
	}()
	replica, err := e.awaitReplica(ctx, dc, d.GetDeployment())
	if err != nil {
		return nil, "", err
	}
	out, k, err := e.predictServed(ctx, ic, name, s, f)
	if err != nil {
		return nil, "", err
	}
	tc, err := f.Col(s.target)
	if err != nil {
		return nil, "", apierr.Invalid("dataset", "%v", err)
	}
	o := &outcome{rows: int64(f.NumRows())}
	if len(s.labels) > 0 {
		err = o.classification(s.labels, tc, out, k)
	} else {
		err = o.regression(tc, out)
	}
	if err != nil {
		return nil, "", err
	}
	o.drift = driftOf(v.GetTrainingStats(), f, s.columns)
	return o, "job:" + replica, nil
}

// servedName is a deployment name of the version's own, unique per
// evaluation.
func servedName(v *registryv1.ModelVersion) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	model := v.Model
	if len(model) > 36 {
		model = strings.TrimRight(model[:36], "-")
	}
	return fmt.Sprintf("eval-%s-v%d-%s", model, v.Version, hex.EncodeToString(b))
}

// awaitReplica waits until the deployment has a ready replica and returns
// its job id; a replica whose job failed, or none ready within
// evaluator.served-timeout, ends the evaluation with the deployment's
// reason.
func (e *Evaluator) awaitReplica(ctx context.Context, dc gatewayv1.DeploymentServiceClient, d *gatewayv1.Deployment) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ServedTimeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	why := ""
	for {
		got, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: d.Name})
		if err == nil {
			st := got.GetDeployment().GetStatus()
			for _, r := range st.GetReplicas() {
				if r.Ready {
					return r.Id, nil
				}
				if r.JobStateKind == schedulerv1.JobState_JOB_STATE_FAILED {
					return "", apierr.Precondition("the serving runtime of %s failed to start: %s", d.Model, r.Reason)
				}
				if r.Reason != "" {
					why = r.Reason
				}
			}
			if st.GetMessage() != "" {
				why = st.GetMessage()
			}
		}
		select {
		case <-ctx.Done():
			if why == "" && err != nil {
				why = err.Error()
			}
			return "", apierr.Precondition("no replica of %s was ready within %s (evaluator.served-timeout): %s", d.Model, e.cfg.ServedTimeout, why)
		case <-t.C:
		}
	}
}

// predictServed sends f's rows in batches, a few in flight, and returns
// the row-major outputs: for a classifier its probabilities (k per row),
// else one prediction per row.
func (e *Evaluator) predictServed(ctx context.Context, ic inference.GRPCInferenceServiceClient, name string, s *servedSpec, f *dataset.Frame) ([]float64, int, error) {
	cols := make([]*dataset.Column, len(s.columns))
	for i, c := range s.columns {
		col, err := f.Col(c)
		if err != nil {
			return nil, 0, apierr.Invalid("dataset", "%v", err)
		}
		if col.Kind != dataset.Numeric {
			return nil, 0, apierr.Invalid("dataset", "column %q is not numeric; the model's input tensor is", c)
		}
		cols[i] = col
	}
	n, batch := f.NumRows(), e.cfg.ServedBatchRows
	nb := (n + batch - 1) / batch
	parts := make([][]float64, nb)
	ks := make([]int, nb)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, nb)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for b := range nb {
		lo, hi := b*batch, min((b+1)*batch, n)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := ic.ModelInfer(ctx, s.request(name, cols, lo, hi))
			if err == nil {
				parts[b], ks[b], err = s.outputs(resp, hi-lo)
			}
			if err != nil {
				errs[b] = fmt.Errorf("rows %d-%d through %s: %w", lo, hi-1, name, err)
				cancel()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && status.Code(err) != codes.Canceled {
			return nil, 0, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	for _, k := range ks[1:] {
		if k != ks[0] {
			return nil, 0, fmt.Errorf("the answers of %s hold %d and %d values per row", name, ks[0], k)
		}
	}
	out := make([]float64, 0, n*ks[0])
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, ks[0], nil
}

// request is rows lo..hi of the input columns as one [rows, columns]
// tensor.
func (s *servedSpec) request(name string, cols []*dataset.Column, lo, hi int) *inference.ModelInferRequest {
	in := &inference.ModelInferRequest_InferInputTensor{Name: s.input, Datatype: s.datatype,
		Shape: []int64{int64(hi - lo), int64(len(cols))}, Contents: &inference.InferTensorContents{}}
	for r := lo; r < hi; r++ {
		for _, c := range cols {
			if s.datatype == "FP64" {
				in.Contents.Fp64Contents = append(in.Contents.Fp64Contents, c.Num[r])
			} else {
				in.Contents.Fp32Contents = append(in.Contents.Fp32Contents, float32(c.Num[r]))
			}
		}
	}
	return &inference.ModelInferRequest{ModelName: name, Inputs: []*inference.ModelInferRequest_InferInputTensor{in}}
}

// outputs reads a response: a classifier's "probabilities" (or its one
// output, made probabilities by a softmax when the signature says
// logits), else "predictions" or the one output.
func (s *servedSpec) outputs(resp *inference.ModelInferResponse, rows int) ([]float64, int, error) {
	want := "predictions"
	if len(s.labels) > 0 {
		want = "probabilities"
	}
	idx := -1
	for i, o := range resp.Outputs {
		if o.Name == want {
			idx = i
		}
	}
	if idx < 0 && len(resp.Outputs) == 1 {
		idx = 0
	}
	if idx < 0 {
		return nil, 0, fmt.Errorf("the answer has no %q output", want)
	}
	vals, err := floats(resp, idx)
	if err != nil {
		return nil, 0, err
	}
	if rows == 0 || len(vals)%rows != 0 {
		return nil, 0, fmt.Errorf("output %q holds %d values for %d rows", resp.Outputs[idx].Name, len(vals), rows)
	}
	k := len(vals) / rows
	if len(s.labels) > 0 && resp.Outputs[idx].Name != "probabilities" && k == len(s.labels) && !sumsToOne(vals, k) {
		softmax(vals, k)
	}
	return vals, k, nil
}

// floats decodes output i, from its contents or its raw bytes.
func floats(resp *inference.ModelInferResponse, i int) ([]float64, error) {
	o := resp.Outputs[i]
	if i < len(resp.RawOutputContents) {
		raw := resp.RawOutputContents[i]
		switch o.Datatype {
		case "FP64":
			out := make([]float64, len(raw)/8)
			for j := range out {
				out[j] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*j:]))
			}
			return out, nil
		case "FP32":
			out := make([]float64, len(raw)/4)
			for j := range out {
				out[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:])))
			}
			return out, nil
		}
		return nil, fmt.Errorf("output %q is %s; the evaluator reads FP32 and FP64", o.Name, o.Datatype)
	}
	c := o.GetContents()
	switch {
	case len(c.GetFp64Contents()) > 0:
		return c.Fp64Contents, nil
	case len(c.GetFp32Contents()) > 0:
		out := make([]float64, len(c.Fp32Contents))
		for j, v := range c.Fp32Contents {
			out[j] = float64(v)
		}
		return out, nil
	case len(c.GetInt64Contents()) > 0:
		out := make([]float64, len(c.Int64Contents))
		for j, v := range c.Int64Contents {
			out[j] = float64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("output %q holds no FP32, FP64 or INT64 values", o.Name)
}

func sumsToOne(vals []float64, k int) bool {
	for r := 0; r+k <= len(vals); r += k {
		s := 0.0
		for _, v := range vals[r : r+k] {
			if v < 0 {
				return false
			}
			s += v
		}
		if math.Abs(s-1) > 1e-4 {
			return false
		}
	}
	return true
}

func softmax(vals []float64, k int) {
	for r := 0; r+k <= len(vals); r += k {
		row := vals[r : r+k]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, v)
		}
		s := 0.0
		for j, v := range row {
			row[j] = math.Exp(v - m)
			s += row[j]
		}
		for j := range row {
			row[j] /= s
		}
	}
}
