//go:build integration

package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestPayloadLogging: a deployment that logs its payloads has each
// request and response in BMAAS_PAYLOADS with the id its client got
// back, the version that answered and the protocol, readable over gRPC,
// REST and `bmaas deploy payloads`; logging off logs nothing more; a bad
// sample rate names its field.
func TestPayloadLogging(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, withFastGateway())
	ctx := t.Context()
	uploadDatasetFile(t, c.Registry, "iris", "iris.csv")
	_, err := c.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	require.NoError(t, err)
	v := trainVersion(t, c, "iris", "iris", "logistic")
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	_, err = dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Model: "iris@latest", MinReplicas: 1, MaxReplicas: 1, PayloadLogging: &gatewayv1.PayloadLogging{SampleRate: 1.5}}})
	requireField(t, err, codes.InvalidArgument, "deployment.payload_logging.sample_rate")
	out, err := runCLI(t, c, "deploy", "create", "--model", "iris@latest", "--log-payloads")
	require.NoError(t, err)
	require.Contains(t, out, "requests and responses of 100%")
	eventually(t, time.Minute, "deployment ready", func() bool {
		code, _ := httpDo(t, c, "GET", "/v2/models/iris/ready", nil)
		return code == http.StatusOK
	})

	body := []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`)
	for _, id := range []string{"rest-1", "rest-2"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.HTTP+"/v2/models/iris/infer", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	ic := inference.NewGRPCInferenceServiceClient(c.Conn)
	_, err = ic.ModelInfer(metadata.AppendToOutgoingContext(ctx, "x-request-id", "grpc-1"), &inference.ModelInferRequest{ModelName: "iris",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 4},
			Contents: &inference.InferTensorContents{Fp64Contents: []float64{6.7, 3.0, 5.2, 2.3}}}}})
	require.NoError(t, err)

	preq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.HTTP+"/v1/models/iris:predict", bytes.NewReader([]byte(`{"instances":[[5.9,3.0,5.1,1.8]]}`)))
	require.NoError(t, err)
	preq.Header.Set("Content-Type", "application/json")
	preq.Header.Set("X-Request-Id", "predict-1")
	presp, err := http.DefaultClient.Do(preq)
	require.NoError(t, err)
	require.NoError(t, presp.Body.Close())
	require.Equal(t, http.StatusOK, presp.StatusCode)

	var recs []*gatewayv1.PayloadRecord
	eventually(t, 10*time.Second, "four records", func() bool {
		resp, err := dc.ListPayloads(ctx, &gatewayv1.ListPayloadsRequest{Deployment: "iris"})
		require.NoError(t, err)
		recs = resp.GetRecords()
		return len(recs) == 4
	})
	byID := map[string]*gatewayv1.PayloadRecord{}
	for _, r := range recs {
		byID[r.GetRequestId()] = r
		require.Equal(t, "iris", r.GetDeployment())
		require.Equal(t, v, r.GetVersion())
		require.Equal(t, int32(200), r.GetStatus())
		require.NotEmpty(t, r.GetResponse())
		require.Positive(t, r.GetLatencySeconds())
	}
	require.Equal(t, body, byID["rest-1"].GetRequest(), "the body as it came")
	require.Equal(t, "v2-rest", byID["rest-1"].GetProtocol())
	var answer map[string]any
	require.NoError(t, json.Unmarshal(byID["rest-2"].GetResponse(), &answer))
	require.Contains(t, answer, "outputs")
	require.Equal(t, "v2-grpc", byID["grpc-1"].GetProtocol())
	require.Equal(t, "v1-predict", byID["predict-1"].GetProtocol())
	require.Contains(t, string(byID["predict-1"].GetResponse()), `"predictions"`)

	// Pages, REST and the CLI.
	page, err := dc.ListPayloads(ctx, &gatewayv1.ListPayloadsRequest{Deployment: "iris", PageSize: 2})
	require.NoError(t, err)
	require.Len(t, page.GetRecords(), 2)
	require.NotEmpty(t, page.GetNextPageToken())
	rest, err := dc.ListPayloads(ctx, &gatewayv1.ListPayloadsRequest{Deployment: "iris", PageToken: page.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, rest.GetRecords(), 2)
	require.Equal(t, recs[2:], rest.GetRecords(), "the page goes on where the first ended")
	require.Empty(t, rest.GetNextPageToken())
	code, b := httpDo(t, c, http.MethodGet, "/v1/deployments/iris/payloads?page_size=10", nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Contains(t, string(b), `"request_id":"grpc-1"`)
	out, err = runCLI(t, c, "deploy", "payloads", "iris", "--since", "10m")
	require.NoError(t, err)
	require.Contains(t, out, "rest-1")
	require.Contains(t, out, "bytes of protobuf")
	for _, bad := range []struct {
		req   *gatewayv1.ListPayloadsRequest
		field string
	}{
		{&gatewayv1.ListPayloadsRequest{}, "deployment"},
		{&gatewayv1.ListPayloadsRequest{Deployment: "iris", PageSize: 1001}, "page_size"},
		{&gatewayv1.ListPayloadsRequest{Deployment: "iris", PageToken: "7"}, "page_token"},
		{&gatewayv1.ListPayloadsRequest{Deployment: "iris", PageToken: "x:1"}, "page_token"},
	} {
		_, err := dc.ListPayloads(ctx, bad.req)
		requireField(t, err, codes.InvalidArgument, bad.field)
	}
	_, err = runCLI(t, c, "deploy", "create", "--model", "iris@latest", "--name", "iris-2", "--payload-sample-rate", "0.5")
	require.ErrorContains(t, err, "--payload-sample-rate and --payload-parts need --log-payloads")
	_, err = runCLI(t, c, "deploy", "create", "--model", "iris@latest", "--name", "iris-2", "--log-payloads", "--payload-parts", "headers")
	require.ErrorContains(t, err, `--payload-parts: "headers" is not request or response`)
	_, err = runCLI(t, c, "deploy", "create", "--model", "iris@latest", "--name", "iris-2", "--log-payloads", "--payload-sample-rate", "0")
	require.ErrorContains(t, err, "--payload-sample-rate must be above 0 and at most 1")
	_, err = dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris-2"})
	require.Equal(t, codes.NotFound, status.Code(err), "nothing created")
	none, err := dc.ListPayloads(ctx, &gatewayv1.ListPayloadsRequest{Deployment: "nobody"})
	require.NoError(t, err)
	require.Empty(t, none.GetRecords())

	// Off: nothing more is logged.
	_, err = dc.UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "iris"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"payload_logging"}}})
	require.NoError(t, err)
	eventually(t, 10*time.Second, "logging off in the gateway's cache", func() bool {
		d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
		require.NoError(t, err)
		return d.GetDeployment().GetPayloadLogging() == nil
	})
	time.Sleep(time.Second) // the gateway's cache follows etcd's watch
	code, _ = httpDo(t, c, http.MethodPost, "/v2/models/iris/infer", json.RawMessage(body))
	require.Equal(t, http.StatusOK, code)
	time.Sleep(500 * time.Millisecond)
	after, err := dc.ListPayloads(ctx, &gatewayv1.ListPayloadsRequest{Deployment: "iris"})
	require.NoError(t, err)
	require.Len(t, after.GetRecords(), 4)
}
