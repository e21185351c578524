package cli

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
)

// fakeServing is a deployment "d" of model "m" version 1 taking
// features inputs: its KServe v2 data plane echoes each row's first
// value as the row's prediction, and the registry holds the version's
// signature (columns may be nil: a model that names none).
type fakeServing struct {
	inference.UnimplementedGRPCInferenceServiceServer
	gatewayv1.UnimplementedDeploymentServiceServer
	registryv1.UnimplementedRegistryServiceServer
	features int64
	columns  []string
	// drop, when set, answers one prediction fewer than the rows sent.
	drop bool

	mu   sync.Mutex
	sent [][]float64 // the rows of the last ModelInfer
}

func (f *fakeServing) start(t *testing.T) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(srv, f)
	gatewayv1.RegisterDeploymentServiceServer(srv, f)
	registryv1.RegisterRegistryServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

func (f *fakeServing) ModelMetadata(_ context.Context, r *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	if r.Name != "d" {
		return nil, status.Errorf(codes.NotFound, "model %q not found", r.Name) // as the gateway said before
	}
	return &inference.ModelMetadataResponse{Name: "d", Versions: []string{"1"}, Inputs: []*inference.ModelMetadataResponse_TensorMetadata{
		{Name: "features", Datatype: "FP64", Shape: []int64{-1, f.features}}}}, nil
}

func (f *fakeServing) ModelInfer(_ context.Context, r *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	in := r.Inputs[0]
	x, k := in.GetContents().GetFp64Contents(), int(in.Shape[1])
	var rows [][]float64
	var preds []float64
	for i := 0; i+k <= len(x); i += k {
		rows = append(rows, x[i:i+k])
		preds = append(preds, x[i])
	}
	f.mu.Lock()
	f.sent = rows
	f.mu.Unlock()
	if f.drop {
		preds = preds[1:]
	}
	return &inference.ModelInferResponse{ModelName: "d", ModelVersion: "1", Outputs: []*inference.ModelInferResponse_InferOutputTensor{
		{Name: "predictions", Datatype: "FP64", Shape: []int64{int64(len(preds))}, Contents: &inference.InferTensorContents{Fp64Contents: preds}}}}, nil
}

func (f *fakeServing) GetDeployment(_ context.Context, r *gatewayv1.GetDeploymentRequest) (*gatewayv1.GetDeploymentResponse, error) {
	if r.Name != "d" {
		return nil, status.Errorf(codes.NotFound, "deployment %q not found", r.Name)
	}
	return &gatewayv1.GetDeploymentResponse{Deployment: &gatewayv1.Deployment{Name: "d", Model: "m@1",
		Status: &gatewayv1.DeploymentStatus{Version: 1}}}, nil
}

func (f *fakeServing) ListDeployments(context.Context, *gatewayv1.ListDeploymentsRequest) (*gatewayv1.ListDeploymentsResponse, error) {
	return &gatewayv1.ListDeploymentsResponse{Deployments: []*gatewayv1.Deployment{{Name: "d", Model: "m@1"}}}, nil
}

func (f *fakeServing) GetModelVersion(_ context.Context, r *registryv1.GetModelVersionRequest) (*registryv1.GetModelVersionResponse, error) {
	if r.Model != "m" || r.Version != "1" {
		return nil, status.Errorf(codes.NotFound, "version %s@%s not found", r.Model, r.Version)
	}
	return &registryv1.GetModelVersionResponse{Version: &registryv1.ModelVersion{Model: "m", Version: 1,
		Signature: &commonv1.Signature{Inputs: []*commonv1.TensorSpec{{Name: "features", Columns: f.columns,
			Shape: []int64{-1, f.features}}}}}}, nil
}

func (f *fakeServing) lastRows() [][]float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}
