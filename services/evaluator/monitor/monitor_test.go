package monitor

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// testVersion is a classifier over a numeric column x (training values
// 0 to 10) and a categorical column c (a or b), whose target y is 0 or 1.
func testVersion() *versionInfo {
	hist := &commonv1.Histogram{Edges: []float64{0, 2, 4, 6, 8, 10}, Counts: []int64{20, 20, 20, 20, 20}}
	return newVersionInfo(&registryv1.ModelVersion{Model: "m", Version: 1,
		Signature: &commonv1.Signature{
			Inputs:  []*commonv1.TensorSpec{{Name: "input", Columns: []string{"x", "c"}}},
			Outputs: []*commonv1.TensorSpec{{Name: "predictions", Labels: []string{"0", "1"}}}},
		TrainingStats: &commonv1.DatasetStats{Rows: 100, Columns: []*commonv1.ColumnStats{
			{Name: "x", Kind: commonv1.ValueKind_VALUE_KIND_NUMERIC, Count: 100, Mean: 5, Std: 2.9, Min: 0, Max: 10, Histogram: hist},
			{Name: "c", Kind: commonv1.ValueKind_VALUE_KIND_CATEGORICAL, Count: 100, Distinct: 2,
				TopCategories: []*commonv1.CategoryCount{{Value: "a", Count: 50}, {Value: "b", Count: 50}}},
			{Name: "y", Kind: commonv1.ValueKind_VALUE_KIND_NUMERIC, Count: 100, Mean: 0.5,
				Histogram: &commonv1.Histogram{Edges: []float64{0, 0.5, 1}, Counts: []int64{50, 50}}}}}})
}

func TestVersionInfoFindsTheTarget(t *testing.T) {
	v := testVersion()
	require.Equal(t, []string{"x", "c"}, v.inputs)
	require.Equal(t, "y", v.target.GetName())
	require.Equal(t, []string{"0", "1"}, v.classes)
}

func TestDecodeRESTAndGRPC(t *testing.T) {
	v := testVersion()
	rest := &gatewayv1.PayloadRecord{Protocol: "v2-rest", Status: 200,
		Request:  []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[2,2],"data":[1.5,0,9,1]}]}`),
		Response: []byte(`{"outputs":[{"name":"predictions","datatype":"BYTES","shape":[2],"data":["0","1"]},{"name":"probabilities","datatype":"FP64","shape":[2,2],"data":[0.9,0.1,0.2,0.8]}]}`)}
	d, err := decode(rest, v, true)
	require.NoError(t, err)
	require.Equal(t, 2, d.rows)
	require.Equal(t, []float64{1.5, 9}, d.num["x"])
	require.Equal(t, []string{"0", "1"}, d.cat["c"], "a numeric value of a categorical column reads as its category")
	require.Equal(t, []string{"0", "1"}, d.labels)
	require.Equal(t, 2, d.k)

	// One tensor per column, over gRPC, as raw contents.
	req := &inference.ModelInferRequest{Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{3}}},
		{Name: "c", Datatype: "BYTES", Shape: []int64{1}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("b")}}}}}
	resp := &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{
		{Name: "predictions", Datatype: "BYTES", Shape: []int64{1}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("1")}}}}}
	reqB, _ := proto.Marshal(req)
	respB, _ := proto.Marshal(resp)
	d, err = decode(&gatewayv1.PayloadRecord{Protocol: "v2-grpc", Status: 200, Request: reqB, Response: respB}, v, true)
	require.NoError(t, err)
	require.Equal(t, []float64{3}, d.num["x"])
	require.Equal(t, []string{"b"}, d.cat["c"])
	require.Equal(t, []string{"1"}, d.labels)

	// A body that does not fit the signature is a schema violation.
	for _, body := range []string{`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,3],"data":[1,2,3]}]}`, `not json`} {
		_, err = decode(&gatewayv1.PayloadRecord{Protocol: "v2-rest", Request: []byte(body)}, v, true)
		require.True(t, errors.Is(err, errSchema), "%s: %v", body, err)
	}
	// The OpenAI routes carry no tensors: traffic only.
	d, err = decode(&gatewayv1.PayloadRecord{Protocol: "openai", Request: []byte(`{"prompt":"x"}`)}, v, true)
	require.NoError(t, err)
	require.Zero(t, d.rows)
}

func TestWindowDriftQualityAndPerformance(t *testing.T) {
	v := testVersion()
	w := newWindow(time.Unix(0, 0))
	d := &decoded{num: map[string][]float64{}, cat: map[string][]string{}}
	for i := range 200 {
		// x far above its training range; c as trained, with a missing
		// value and an unseen category.
		d.num["x"] = append(d.num["x"], 20+float64(i%5))
		c := []string{"a", "b"}[i%2]
		switch i {
		case 0:
			c = ""
		case 1:
			c = "z"
		}
		d.cat["c"] = append(d.cat["c"], c)
		d.labels = append(d.labels, []string{"0", "1"}[i%2])
	}
	d.rows = 200
	w.add(d, v, 1000)
	w.requests, w.errors = 4, 1
	w.latencies.add(0.1, 10)
	w.perf = labelled{truth: []string{"0", "1", "1", "0"}, pred: []string{"0", "1", "0", "0"},
		proba: [][]float64{{0.9, 0.1}, {0.2, 0.8}, {0.6, 0.4}, {0.7, 0.3}}}
	out := w.compute("dep", time.Minute, v, time.Unix(60, 0))
	byCol := map[string]*evaluatorv1.ColumnDrift{}
	for _, c := range out.Drift {
		byCol[c.Column] = c
	}
	require.True(t, byCol["x"].Drifted)
	require.Equal(t, "ks", byCol["x"].Test)
	require.False(t, byCol["c"].Drifted, "%+v", byCol["c"])
	require.Equal(t, "chisquare", byCol["c"].Test)
	require.InDelta(t, 0.5, out.DriftShare, 1e-9)
	require.False(t, out.PredictionDrift.Drifted, "%+v", out.PredictionDrift)
	require.InDelta(t, 200.0/400, out.Quality.OutOfRangeRate, 1e-9)
	require.InDelta(t, 1.0/400, out.Quality.MissingRate, 1e-9)
	require.InDelta(t, 1.0/400, out.Quality.UnseenCategoryRate, 1e-9)
	require.InDelta(t, 0.25, out.ErrorRate, 1e-9)
	require.EqualValues(t, 4, out.Performance.LabelledRows)
	require.InDelta(t, 0.75, out.Performance.Accuracy, 1e-9)
	require.InDelta(t, 1.0, out.Performance.Auc, 1e-9)
}

func TestFitFeedback(t *testing.T) {
	cls := &prediction{rows: 2, labels: []string{"0", "1"}}
	f, err := fit("feedback[0]", &evaluatorv1.Feedback{RequestId: "r", Values: []float64{1, 0}}, cls)
	require.NoError(t, err)
	require.Equal(t, []string{"1", "0"}, f.Labels, "numbers for a classifier become its labels")
	_, err = fit("feedback[3]", &evaluatorv1.Feedback{RequestId: "r", Labels: []string{"1"}}, cls)
	var fe *apierr.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "feedback[3].labels", fe.Field)
	reg := &prediction{rows: 1, values: []float64{2.5}}
	f, err = fit("feedback[0]", &evaluatorv1.Feedback{RequestId: "r", Labels: []string{"3.5"}}, reg)
	require.NoError(t, err)
	require.Equal(t, []float64{3.5}, f.Values)
	_, err = fit("feedback[0]", &evaluatorv1.Feedback{RequestId: "r", Labels: []string{"high"}}, reg)
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.Msg, "regressor")
}

func TestSamplesStayBounded(t *testing.T) {
	var s samples
	for i := range 10000 {
		s.add(float64(i), 100)
	}
	require.Len(t, s.xs, 100)
	require.Equal(t, 10000, s.seen)
	var mean float64
	for _, x := range s.xs {
		mean += x / 100
	}
	require.InDelta(t, 5000, mean, 1500, "a uniform sample of the values")
	require.Zero(t, quantile(nil, 0.5))
	require.InDelta(t, 2.5, quantile([]float64{1, 2, 3, 4}, 0.5), 1e-9)
	require.False(t, math.IsNaN(quantile([]float64{7}, 0.99)))
}

// BenchmarkDriftRows is the monitor's work per logged row on one core:
// decoding a v2 REST request and its answer (8 rows of the test
// version), counting them in a window, and each window's drift tests and
// quality over its rows (a window per 1,000 records).
func BenchmarkDriftRows(b *testing.B) {
	v := testVersion()
	rec := &gatewayv1.PayloadRecord{Protocol: "v2-rest", Status: 200,
		Request:  []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[8,2],"data":[1.5,0,9,1,2,1,3,0,4.5,1,6,0,7,1,8.5,0]}]}`),
		Response: []byte(`{"outputs":[{"name":"predictions","datatype":"BYTES","shape":[8],"data":["0","1","1","0","1","0","1","0"]}]}`)}
	w := newWindow(time.Unix(0, 0))
	b.ReportAllocs()
	rows := 0
	for i := 0; b.Loop(); i++ {
		d, err := decode(rec, v, true)
		if err != nil {
			b.Fatal(err)
		}
		w.add(d, v, 5000)
		rows += d.rows
		if i%1000 == 999 {
			w.compute("dep", time.Minute, v, time.Unix(60, 0))
			w = newWindow(time.Unix(0, 0))
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// Past MaxSamples rows in a window a record's inputs are read with
// probability MaxSamples over the rows so far; its answer always is.
func TestInputsAreSampledAnswersAlwaysRead(t *testing.T) {
	v := testVersion()
	rec := &gatewayv1.PayloadRecord{Protocol: "v2-rest", Status: 200,
		Request:  []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[2,2],"data":[1.5,0,9,1]}]}`),
		Response: []byte(`{"outputs":[{"name":"predictions","datatype":"BYTES","shape":[2],"data":["0","1"]}]}`)}
	d, err := decode(rec, v, false)
	require.NoError(t, err)
	require.Equal(t, 2, d.rows, "the answer gives the rows")
	require.Equal(t, []string{"0", "1"}, d.labels)
	require.False(t, d.read)
	require.Empty(t, d.num)
	noAnswer := &gatewayv1.PayloadRecord{Protocol: "v2-rest", Status: 200, Request: rec.Request}
	d, err = decode(noAnswer, v, false)
	require.NoError(t, err)
	require.True(t, d.read, "without an answer the inputs give the rows")
	require.Equal(t, 2, d.rows)

	m := New(Config{MaxSamples: 100}, Deps{})
	m.deps["d"] = map[int64]*window{0: {rows: 50}, 60: {rows: 10000}}
	require.True(t, m.readInputs("d", 0))
	require.True(t, m.readInputs("new", 0))
	n := 0
	for range 20000 {
		if m.readInputs("d", 60) {
			n++
		}
	}
	require.InDelta(t, 200, n, 80, "1% of the records")
}
