package serving_test

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/serving"
)

func inferRequest(name string, x []float64, rows, cols int) *inference.ModelInferRequest {
	return &inference.ModelInferRequest{ModelName: name, Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "input", Datatype: "FP64", Shape: []int64{int64(rows), int64(cols)},
		Contents: &inference.InferTensorContents{Fp64Contents: x}}}}
}

func TestNativeServesExactlyWhatTheArtifactPredicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ algo, data string }{{"logistic", "iris.csv"}, {"linear", "diabetes.csv"}} {
		path, am, f := trainModel(t, tc.algo, tc.data)
		m, err := serving.Load(path, serving.Options{Name: "m", Version: 3})
		require.NoError(t, err)
		cli := serve(t, serving.NewServer(nil, m))
		want := make([]float64, f.NumRows()*am.NumOutputs())
		require.NoError(t, am.NewPredictor().PredictFrame(f, want))

		md, err := cli.ModelMetadata(t.Context(), &inference.ModelMetadataRequest{Name: "m"})
		require.NoError(t, err)
		require.Equal(t, "input", md.Inputs[0].Name)
		require.Equal(t, []int64{-1, int64(len(am.Inputs()))}, md.Inputs[0].Shape)
		require.Equal(t, "predictions", md.Outputs[0].Name)
		require.Equal(t, []string{"3"}, md.Versions)

		x := matrix(t, am, f)
		resp, err := cli.ModelInfer(t.Context(), inferRequest("m", x, f.NumRows(), len(am.Inputs())))
		require.NoError(t, err)
		require.Equal(t, "3", resp.ModelVersion)
		if am.IsClassifier() {
			require.Len(t, resp.Outputs, 2)
			require.Equal(t, want, resp.Outputs[1].Contents.Fp64Contents)
			classes := make([]int, f.NumRows())
			artifact.Classes(want, am.NumOutputs(), classes)
			for r, c := range classes {
				require.Equal(t, am.Labels()[c], string(resp.Outputs[0].Contents.BytesContents[r]))
			}
		} else {
			require.Equal(t, want, resp.Outputs[0].Contents.Fp64Contents)
		}

		// Raw FP64 contents give the same values, raw.
		raw := make([]byte, 8*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
		}
		req := inferRequest("m", nil, f.NumRows(), len(am.Inputs()))
		req.Inputs[0].Contents, req.RawInputContents = nil, [][]byte{raw}
		req.Outputs = []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: m.Outputs[len(m.Outputs)-1].Name}}
		resp, err = cli.ModelInfer(t.Context(), req)
		require.NoError(t, err)
		require.Len(t, resp.RawOutputContents, 1)
		got := make([]float64, len(want))
		for i := range got {
			got[i] = math.Float64frombits(binary.LittleEndian.Uint64(resp.RawOutputContents[0][8*i:]))
		}
		require.Equal(t, want, got)
	}
}

func TestBadInputIsInvalidArgumentNamingTheField(t *testing.T) {
	t.Parallel()
	path, _, _ := trainModel(t, "logistic", "iris.csv")
	m, err := serving.Load(path, serving.Options{Name: "iris", Version: 1})
	require.NoError(t, err)
	cli := serve(t, serving.NewServer(nil, m))
	ok := func() *inference.ModelInferRequest { return inferRequest("iris", make([]float64, 8), 2, 4) }
	for _, tc := range []struct {
		name  string
		edit  func(r *inference.ModelInferRequest)
		code  codes.Code
		field string
	}{
		{"missing input", func(r *inference.ModelInferRequest) { r.Inputs = nil }, codes.InvalidArgument, "inputs: missing input \"input\""},
		{"wrong name", func(r *inference.ModelInferRequest) { r.Inputs[0].Name = "x" }, codes.InvalidArgument, "inputs[0].name"},
		{"wrong datatype", func(r *inference.ModelInferRequest) { r.Inputs[0].Datatype = "INT32" }, codes.InvalidArgument, "inputs[0].datatype"},
		{"wrong shape", func(r *inference.ModelInferRequest) { r.Inputs[0].Shape = []int64{4, 2} }, codes.InvalidArgument, "inputs[0].shape"},
		{"too few values", func(r *inference.ModelInferRequest) {
			r.Inputs[0].Contents.Fp64Contents = r.Inputs[0].Contents.Fp64Contents[:5]
		}, codes.InvalidArgument, "inputs[0].contents"},
		{"bad raw", func(r *inference.ModelInferRequest) {
			r.Inputs[0].Contents = nil
			r.RawInputContents = [][]byte{{1, 2}}
		}, codes.InvalidArgument, "raw_input_contents"},
		{"unknown output", func(r *inference.ModelInferRequest) {
			r.Outputs = []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "nope"}}
		}, codes.InvalidArgument, "outputs[0].name"},
		{"unknown model", func(r *inference.ModelInferRequest) { r.ModelName = "nope" }, codes.NotFound, "model \"nope\""},
		{"unknown version", func(r *inference.ModelInferRequest) { r.ModelVersion = "9" }, codes.NotFound, "iris/9"},
	} {
		r := ok()
		tc.edit(r)
		_, err := cli.ModelInfer(t.Context(), r)
		require.Equal(t, tc.code, status.Code(err), tc.name)
		require.Contains(t, status.Convert(err).Message(), tc.field, tc.name)
	}
	_, err = cli.ModelInfer(t.Context(), ok())
	require.NoError(t, err)
}

func TestDynamicBatchingGivesEveryCallerItsOwnRows(t *testing.T) {
	t.Parallel()
	path, am, f := trainModel(t, "mlp", "wine.csv")
	m, err := serving.Load(path, serving.Options{Name: "w", Version: 1,
		Batching: serving.Batching{MaxBatchSize: 16, MaxQueueDelay: 2 * time.Millisecond}})
	require.NoError(t, err)
	defer m.Close()
	srv := serving.NewServer(nil, m)
	x, cols, k := matrix(t, am, f), len(am.Inputs()), am.NumOutputs()
	want := make([]float64, f.NumRows()*k)
	require.NoError(t, am.NewPredictor().PredictFrame(f, want))
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < f.NumRows(); i += 32 {
				resp, err := srv.ModelInfer(t.Context(), inferRequest("w", x[i*cols:(i+1)*cols], 1, cols))
				if !assertNoErr(t, err) {
					return
				}
				got := resp.Outputs[1].Contents.Fp64Contents
				for j := range k {
					if math.Abs(got[j]-want[i*k+j]) > 1e-6 {
						t.Errorf("row %d: got %v, want %v", i, got, want[i*k:(i+1)*k])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func assertNoErr(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

func TestRepositoryLoadUnload(t *testing.T) {
	t.Parallel()
	path, _, _ := trainModel(t, "logistic", "iris.csv")
	load := func(_ any, name string) (*serving.Model, error) {
		return serving.Load(path, serving.Options{Name: name, Version: 2})
	}
	srv := serving.NewServer(func(ctx context.Context, name string) (*serving.Model, error) { return load(ctx, name) })
	cli := serve(t, srv)
	r, err := cli.ServerReady(t.Context(), &inference.ServerReadyRequest{})
	require.NoError(t, err)
	require.False(t, r.Ready)
	_, err = cli.RepositoryModelLoad(t.Context(), &inference.RepositoryModelLoadRequest{ModelName: "iris"})
	require.NoError(t, err)
	mr, err := cli.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: "iris", Version: "2"})
	require.NoError(t, err)
	require.True(t, mr.Ready)
	_, err = cli.RepositoryModelUnload(t.Context(), &inference.RepositoryModelUnloadRequest{ModelName: "iris"})
	require.NoError(t, err)
	_, err = cli.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: "iris"})
	require.Equal(t, codes.NotFound, status.Code(err))
}
