//go:build integration

package tests

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/testenv/registrytest"
	"github.com/bmaas/bmaas/tests/harness"
)

// modelNames lists the names of the models a registry client sees.
func modelNames(t *testing.T, reg registryv1.RegistryServiceClient) []string {
	t.Helper()
	resp, err := reg.ListModels(t.Context(), &registryv1.ListModelsRequest{PageSize: 1000})
	require.NoError(t, err)
	var out []string
	for _, m := range resp.GetModels() {
		out = append(out, m.GetName())
	}
	return out
}

// datasetNames lists the names of the datasets a registry client sees.
func datasetNames(t *testing.T, reg registryv1.RegistryServiceClient) []string {
	t.Helper()
	resp, err := reg.ListDatasets(t.Context(), &registryv1.ListDatasetsRequest{PageSize: 1000})
	require.NoError(t, err)
	var out []string
	for _, d := range resp.GetDatasets() {
		out = append(out, d.GetName())
	}
	return out
}

// projectCluster is a cluster asking tokens, with the project vision
// (quota q, nil for none) besides the default one, and the admin's
// token and IAM client.
func projectCluster(t *testing.T, q *iamv1.Quota, opts ...harness.Option) (*harness.Cluster, string, iamv1.IAMServiceClient) {
	t.Helper()
	c, admin := authCluster(t, opts...)
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	_, err := adminIAM.CreateProject(t.Context(), &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision", Quota: q}})
	require.NoError(t, err)
	return c, admin, adminIAM
}

// TestProjectNames: models, datasets, jobs' outputs and evaluations are
// named within their project. The same name in two projects is two
// resources; within one it is refused; a bare name is in the caller's
// project and "project/name" says another; what is in a project its
// caller has no role in is never listed and answers NotFound; a job in a
// project trains on its project's dataset and registers its project's
// model; bad project names are refused naming their field.
func TestProjectNames(t *testing.T) {
	t.Parallel()
	c, admin, adminIAM := projectCluster(t, nil)
	ctx := t.Context()
	aliceTok := mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "editor"})
	carolTok := mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"})
	vicTok := mustToken(t, adminIAM, "vic", &iamv1.Binding{Project: "vision", Role: "viewer"})
	alice := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, aliceTok))
	carol := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, carolTok))
	vic := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, vicTok))
	adminReg := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, admin))

	// The same name in two projects: two models.
	mine, err := carol.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "fraud", Description: "vision's"}})
	require.NoError(t, err)
	require.Equal(t, "vision/fraud", mine.GetModel().GetName(), "a bare name is in the caller's project")
	theirs, err := alice.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "fraud", Description: "default's"}})
	require.NoError(t, err)
	require.Equal(t, "fraud", theirs.GetModel().GetName(), "the default project's names stay bare")

	// Within one project: refused, however the name is said.
	_, err = carol.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "fraud"}})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)
	_, err = adminReg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "vision/fraud"}})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)
	_, err = adminReg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "default/fraud"}})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)

	// Each lists its own project's; the cluster-admin says which project.
	require.Equal(t, []string{"vision/fraud"}, modelNames(t, carol))
	require.Equal(t, []string{"vision/fraud"}, modelNames(t, vic))
	require.Equal(t, []string{"fraud"}, modelNames(t, alice))
	require.Equal(t, []string{"fraud"}, modelNames(t, adminReg))
	inVision := metadata.AppendToOutgoingContext(ctx, "bmaas-project", "vision")
	resp, err := adminReg.ListModels(inVision, &registryv1.ListModelsRequest{})
	require.NoError(t, err)
	require.Len(t, resp.GetModels(), 1)
	require.Equal(t, "vision's", resp.GetModels()[0].GetDescription())

	// A project header naming no project: said so, naming the header.
	for _, cli := range []registryv1.RegistryServiceClient{adminReg, carol} {
		_, err = cli.ListModels(metadata.AppendToOutgoingContext(ctx, "bmaas-project", "nope"), &registryv1.ListModelsRequest{})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), `bmaas-project: no project "nope"`)
	}

	// A bare name reads the caller's own; another project's is NotFound
	// to whoever has no role there.
	got, err := carol.GetModel(ctx, &registryv1.GetModelRequest{Name: "fraud"})
	require.NoError(t, err)
	require.Equal(t, "vision's", got.GetModel().GetDescription())
	got, err = adminReg.GetModel(ctx, &registryv1.GetModelRequest{Name: "vision/fraud"})
	require.NoError(t, err)
	require.Equal(t, "vision's", got.GetModel().GetDescription())
	_, err = carol.GetModel(ctx, &registryv1.GetModelRequest{Name: "default/fraud"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = alice.GetModel(ctx, &registryv1.GetModelRequest{Name: "vision/fraud"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = alice.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: "vision/fraud"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	// Over REST: a bare name in the caller's project, a qualified one
	// escaped in the path.
	code, body := httpAs(t, c, carolTok, "GET", "/v1/models/fraud", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "vision's")
	code, body = httpAs(t, c, admin, "GET", "/v1/models/vision%2Ffraud", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "vision's")
	code, body = httpAs(t, c, aliceTok, "GET", "/v1/models/vision%2Ffraud", "")
	require.Equal(t, http.StatusNotFound, code, body)
	// The CLI: --project, or a qualified name.
	out, err := runCLI(t, c, "--token", carolTok, "model", "list", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out, `"vision/fraud"`)
	require.NotContains(t, out, `"fraud"`)
	out, err = runCLI(t, c, "--token", admin, "--project", "vision", "model", "get", "fraud", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out, "vision's")
	out, err = runCLI(t, c, "--token", admin, "model", "get", "vision/fraud", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out, "vision's")
	// A viewer reads, and may not write.
	_, err = vic.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "other"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	// Bad names and unknown projects, naming the field.
	for _, tc := range []struct{ name, field, says string }{
		{"nope/x", "model.name", `no project "nope"`},
		{"vision/a/b", "model.name", "at most one project"},
		{"Vision/x", "model.name", "project"},
	} {
		_, err := adminReg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: tc.name}})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", tc.name, err)
		require.Contains(t, status.Convert(err).Message(), tc.field)
		require.Contains(t, status.Convert(err).Message(), tc.says)
	}

	// Datasets: the same, through a streamed upload.
	csv, err := os.ReadFile(filepath.Join("..", "examples", "datasets", "breast_cancer.csv"))
	require.NoError(t, err)
	dv := registrytest.UploadDataset(t, carol, "cancer", "breast_cancer.csv", csv)
	require.Equal(t, "vision/cancer", dv.GetDataset())
	half := csv[:len(csv)/2]
	registrytest.UploadDataset(t, alice, "cancer", "breast_cancer.csv", half[:strings.LastIndexByte(string(half), '\n')+1])
	require.Equal(t, []string{"vision/cancer"}, datasetNames(t, carol))
	require.Equal(t, []string{"cancer"}, datasetNames(t, alice))
	ds, err := carol.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: "cancer"})
	require.NoError(t, err)
	require.Equal(t, dv.GetSizeBytes(), ds.GetDataset().GetLatest().GetSizeBytes())
	_, err = alice.DownloadDataset(ctx, &registryv1.DownloadDatasetRequest{Dataset: "vision/cancer"})
	if err == nil {
		stream, _ := alice.DownloadDataset(ctx, &registryv1.DownloadDatasetRequest{Dataset: "vision/cancer"})
		_, err = stream.Recv()
	}
	require.Equal(t, codes.NotFound, status.Code(err), "a download of another project's dataset: %v", err)

	// The storage quota holds against uploads at the same moment: room
	// for two of six.
	_, err = adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "store",
		Quota: &iamv1.Quota{StorageBytes: 2*1000 + 500}}})
	require.NoError(t, err)
	_, err = adminReg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "store/blobs"}})
	require.NoError(t, err)
	uploads := concurrently(6, func(i int) error {
		data := []byte(strings.Repeat(strconv.Itoa(i), 1000))
		sum := sha256.Sum256(data)
		stream, err := adminReg.CreateModelVersion(ctx)
		if err != nil {
			return err
		}
		if stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
			Header: &registryv1.CreateModelVersionHeader{Model: "store/blobs", Sha256: hex.EncodeToString(sum[:])}}}) == nil {
			_ = stream.Send(&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: data}})
		}
		_, err = stream.CloseAndRecv()
		return err
	})
	require.Equal(t, map[codes.Code]int{codes.OK: 2, codes.ResourceExhausted: 4}, uploads)

	// A job in vision trains on vision's dataset and registers vision's
	// model, all said with bare names.
	sc := schedulerv1.NewSchedulerServiceClient(dialAs(t, c.Addrs.GRPC, carolTok))
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: builtinSpec("fraud", "cancer", "logistic", map[string]string{"C": "1"})})
	require.NoError(t, err)
	require.Equal(t, "vision", sub.GetJob().GetSpec().GetProject())
	require.Equal(t, "vision/fraud", sub.GetJob().GetSpec().GetModel())
	job := waitJob(t, sc, sub.GetJob().GetId(), 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.GetState(), "reason: %s", job.GetReason())
	v, err := carol.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "fraud", Version: "latest"})
	require.NoError(t, err)
	require.Equal(t, "vision/fraud", v.GetVersion().GetModel())
	require.Equal(t, "vision/cancer", v.GetVersion().GetLineage().GetDataset())
	_, err = alice.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "fraud", Version: "latest"})
	require.Equal(t, codes.NotFound, status.Code(err), "default's fraud has no version: %v", err)
	// The job's checkpoint is the job's project's: the agent (the
	// cluster) writes it, the project reads it, nobody else sees it.
	ckpt := func(reg registryv1.RegistryServiceClient) error {
		data := []byte("state")
		sum := sha256.Sum256(data)
		st, err := reg.UploadCheckpoint(ctx)
		if err != nil {
			return err
		}
		// A refused stream ends at once: a later Send is io.EOF, and the
		// refusal comes from CloseAndRecv.
		if st.Send(&registryv1.UploadCheckpointRequest{Payload: &registryv1.UploadCheckpointRequest_Header{
			Header: &registryv1.UploadCheckpointHeader{JobId: sub.GetJob().GetId(), Step: 1, Project: "vision", Sha256: hex.EncodeToString(sum[:])}}}) == nil {
			_ = st.Send(&registryv1.UploadCheckpointRequest{Payload: &registryv1.UploadCheckpointRequest_Chunk{Chunk: data}})
		}
		_, err = st.CloseAndRecv()
		return err
	}
	require.Equal(t, codes.PermissionDenied, status.Code(ckpt(carol)), "only the cluster writes checkpoints")
	require.NoError(t, ckpt(adminReg))
	_, err = carol.GetCheckpoint(ctx, &registryv1.GetCheckpointRequest{JobId: sub.GetJob().GetId()})
	require.NoError(t, err)
	_, err = alice.GetCheckpoint(ctx, &registryv1.GetCheckpointRequest{JobId: sub.GetJob().GetId()})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	// A job may not name what its caller cannot see.
	_, err = sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: builtinSpec("fraud", "default/cancer", "logistic", nil)})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	// Evaluations are their model's project's.
	ev := evaluatorv1.NewEvaluatorServiceClient(dialAs(t, c.Addrs.GRPC, carolTok))
	created, err := ev.CreateEvaluation(ctx, &evaluatorv1.CreateEvaluationRequest{Evaluation: &evaluatorv1.Evaluation{
		Model: "fraud", Version: "1", Dataset: "cancer"}})
	require.NoError(t, err)
	require.Equal(t, "vision/fraud", created.GetEvaluation().GetModel())
	require.Equal(t, "vision/cancer", created.GetEvaluation().GetDataset())
	mine2, err := ev.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, mine2.GetEvaluations())
	aliceEv := evaluatorv1.NewEvaluatorServiceClient(dialAs(t, c.Addrs.GRPC, aliceTok))
	seen, err := aliceEv.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{})
	require.NoError(t, err)
	for _, e := range seen.GetEvaluations() {
		require.False(t, strings.HasPrefix(e.GetModel(), "vision/"), "alice sees vision's evaluation %v", e)
	}
	_, err = aliceEv.GetEvaluation(ctx, &evaluatorv1.GetEvaluationRequest{Id: created.GetEvaluation().GetId()})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

// TestUpgradeKeepsDataInDefault: data written before projects (a
// cluster without tokens, bare names) is the default project's after an
// upgrade to a cluster with tokens and projects: listed there, read by
// its bare and its qualified name, invisible to another project's
// identities, whose own same-named resources sit beside it.
func TestUpgradeKeepsDataInDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := harness.Start(t, harness.WithDataDir(dir))
	ctx := t.Context()
	_, err := old.Registry.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "legacy"}})
	require.NoError(t, err)
	data := []byte("a model from before projects")
	uploadBytes(t, old.Registry, "legacy", data)
	registrytest.UploadDataset(t, old.Registry, "legacy-data", "d.csv", []byte("a,target\n1,0\n2,1\n"))
	require.NoError(t, old.Stop())

	c, admin := authCluster(t, harness.WithDataDir(dir))
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	_, err = adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "vision"}})
	require.NoError(t, err)
	adminReg := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	require.Equal(t, []string{"legacy"}, modelNames(t, adminReg))
	require.Equal(t, []string{"legacy-data"}, datasetNames(t, adminReg))
	require.Equal(t, data, downloadBytes(t, adminReg, "default/legacy", "latest"))
	require.Equal(t, data, downloadBytes(t, adminReg, "legacy", "1"))

	carol := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC,
		mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"})))
	require.Empty(t, modelNames(t, carol))
	require.Empty(t, datasetNames(t, carol))
	_, err = carol.GetModel(ctx, &registryv1.GetModelRequest{Name: "default/legacy"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = carol.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "legacy"}})
	require.NoError(t, err)
	require.Equal(t, []string{"legacy"}, modelNames(t, adminReg))
	require.Equal(t, []string{"vision/legacy"}, modelNames(t, carol))
}

// TestProjectDeployments: a deployment is its project's, named after
// its model there: two projects serve "iris" side by side, each reached
// by its bare name from inside the project and as "project/iris" (a
// path's "project%2Firis") from outside; whoever has no role in a
// project gets NotFound for its deployment on every route; its replicas
// run as the project's jobs; its quota counts its own deployments only.
func TestProjectDeployments(t *testing.T) {
	t.Parallel()
	c, admin, adminIAM := projectCluster(t, &iamv1.Quota{Deployments: 1}, withFastGateway())
	ctx := t.Context()
	carolTok := mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"})
	aliceTok := mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "editor"})

	deployIris := func(tok, want string) {
		conn := dialAs(t, c.Addrs.GRPC, tok)
		reg := registryv1.NewRegistryServiceClient(conn)
		uploadDatasetFile(t, reg, "iris", "iris.csv")
		_, err := reg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
		require.NoError(t, err)
		sc := schedulerv1.NewSchedulerServiceClient(conn)
		sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: builtinSpec("iris", "iris", "logistic", nil)})
		require.NoError(t, err)
		job := waitJob(t, sc, sub.GetJob().GetId(), 2*time.Minute)
		require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, job.GetState(), "reason: %s", job.GetReason())
		d, err := gatewayv1.NewDeploymentServiceClient(conn).CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{
			Deployment: &gatewayv1.Deployment{Model: "iris@latest", MinReplicas: 1, MaxReplicas: 1}})
		require.NoError(t, err)
		require.Equal(t, want, d.GetDeployment().GetName())
	}
	deployIris(carolTok, "vision/iris")
	deployIris(aliceTok, "iris")

	names := func(tok string) []string {
		resp, err := gatewayv1.NewDeploymentServiceClient(dialAs(t, c.Addrs.GRPC, tok)).ListDeployments(ctx, &gatewayv1.ListDeploymentsRequest{})
		require.NoError(t, err)
		var out []string
		for _, d := range resp.GetDeployments() {
			out = append(out, d.GetName())
		}
		return out
	}
	require.Equal(t, []string{"vision/iris"}, names(carolTok))
	require.Equal(t, []string{"iris"}, names(aliceTok))

	for _, tc := range []struct{ tok, path string }{
		{carolTok, "/v2/models/iris/ready"}, {aliceTok, "/v2/models/iris/ready"}, {admin, "/v2/models/vision%2Firis/ready"},
	} {
		eventually(t, 2*time.Minute, tc.path+" ready", func() bool {
			code, _ := httpAs(t, c, tc.tok, "GET", tc.path, "")
			return code == http.StatusOK
		})
	}

	infer := `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`
	for _, tc := range []struct {
		who, tok, path string
		want           int
	}{
		{"carol", carolTok, "/v2/models/iris/infer", http.StatusOK},
		{"admin", admin, "/v2/models/vision%2Firis/infer", http.StatusOK},
		{"carol", carolTok, "/v1/models/iris:predict", http.StatusOK},
		{"alice", aliceTok, "/v2/models/iris/infer", http.StatusOK},
		{"alice", aliceTok, "/v2/models/vision%2Firis/infer", http.StatusNotFound},
		{"alice", aliceTok, "/v2/models/vision%2Firis", http.StatusNotFound},
		{"carol", carolTok, "/v2/models/default%2Firis/infer", http.StatusNotFound},
	} {
		body := infer
		if strings.HasPrefix(tc.path, "/v1/") {
			body = `{"instances":[[5.1,3.5,1.4,0.2]]}`
		}
		method := "POST"
		if !strings.HasSuffix(tc.path, "infer") && !strings.HasSuffix(tc.path, "predict") {
			method, body = "GET", ""
		}
		code, out := httpAs(t, c, tc.tok, method, tc.path, body)
		require.Equal(t, tc.want, code, "%s %s %s: %s", tc.who, method, tc.path, out)
	}
	row := &inference.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP64", Shape: []int64{1, 4},
		Contents: &inference.InferTensorContents{Fp64Contents: []float64{5.1, 3.5, 1.4, 0.2}}}
	for _, tc := range []struct {
		tok, name string
		want      codes.Code
	}{
		{carolTok, "iris", codes.OK}, {admin, "vision/iris", codes.OK}, {aliceTok, "iris", codes.OK},
		{aliceTok, "vision/iris", codes.NotFound}, {carolTok, "default/iris", codes.NotFound},
	} {
		_, err := inference.NewGRPCInferenceServiceClient(dialAs(t, c.Addrs.GRPC, tc.tok)).ModelInfer(ctx,
			&inference.ModelInferRequest{ModelName: tc.name, Inputs: []*inference.ModelInferRequest_InferInputTensor{row}})
		require.Equal(t, tc.want, status.Code(err), "%s: %v", tc.name, err)
	}

	// A token for vision's deployment alone calls it, said either way,
	// and nothing else.
	appTok := mustToken(t, adminIAM, "app", &iamv1.Binding{Project: "vision", Deployment: "iris"})
	for path, want := range map[string]int{"/v2/models/iris/infer": http.StatusOK, "/v2/models/vision%2Firis/infer": http.StatusOK,
		"/v2/models/default%2Firis/infer": http.StatusNotFound} {
		code, out := httpAs(t, c, appTok, "POST", path, infer)
		require.Equal(t, want, code, "%s: %s", path, out)
	}
	_, err := inference.NewGRPCInferenceServiceClient(dialAs(t, c.Addrs.GRPC, appTok)).ModelInfer(ctx,
		&inference.ModelInferRequest{ModelName: "iris", Inputs: []*inference.ModelInferRequest_InferInputTensor{row}})
	require.NoError(t, err)

	// vision's replica is vision's job; alice never sees it.
	jobs, err := schedulerv1.NewSchedulerServiceClient(dialAs(t, c.Addrs.GRPC, carolTok)).ListJobs(ctx,
		&schedulerv1.ListJobsRequest{LabelSelector: "deployment=iris", State: schedulerv1.JobState_JOB_STATE_RUNNING})
	require.NoError(t, err)
	require.Len(t, jobs.GetJobs(), 1)
	require.Equal(t, "vision", jobs.GetJobs()[0].GetSpec().GetProject())

	// vision holds 1 of its 1 deployment; the default project's do not count.
	_, err = gatewayv1.NewDeploymentServiceClient(dialAs(t, c.Addrs.GRPC, carolTok)).CreateDeployment(ctx,
		&gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{Name: "iris2", Model: "iris@latest"}})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "project vision holds 1 of 1 deployments")

	// A quota holds against changes at the same moment: of eight
	// deployments made at once in a project of two, two are made.
	_, err = adminIAM.CreateProject(ctx, &iamv1.CreateProjectRequest{Project: &iamv1.Project{Name: "race",
		Quota: &iamv1.Quota{Deployments: 2}}})
	require.NoError(t, err)
	deps := gatewayv1.NewDeploymentServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	codesOf := concurrently(8, func(i int) error {
		_, err := deps.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
			Name: fmt.Sprintf("race/d%d", i), Model: "vision/iris@latest"}})
		return err
	})
	require.Equal(t, map[codes.Code]int{codes.OK: 2, codes.ResourceExhausted: 6}, codesOf)
}

// concurrently runs call(0..n-1) at once and counts the codes they end with.
func concurrently(n int, call func(i int) error) map[codes.Code]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[codes.Code]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := call(i)
			mu.Lock()
			out[status.Code(err)]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// TestProjectAlertRules: alert rules are named within their project,
// listed to its identities only, and NotFound to the others.
func TestProjectAlertRules(t *testing.T) {
	t.Parallel()
	c, _, adminIAM := projectCluster(t, nil)
	ctx := t.Context()
	carol := evaluatorv1.NewMonitorServiceClient(dialAs(t, c.Addrs.GRPC,
		mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"})))
	alice := evaluatorv1.NewMonitorServiceClient(dialAs(t, c.Addrs.GRPC,
		mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "editor"})))
	rule := func() *evaluatorv1.AlertRule {
		return &evaluatorv1.AlertRule{Name: "queue", Series: "queued_jobs",
			Comparison: evaluatorv1.Comparison_COMPARISON_GREATER, Threshold: 100}
	}
	mine, err := carol.CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: rule()})
	require.NoError(t, err)
	require.Equal(t, "vision/queue", mine.GetRule().GetName())
	theirs, err := alice.CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: rule()})
	require.NoError(t, err)
	require.Equal(t, "queue", theirs.GetRule().GetName())
	_, err = carol.CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: rule()})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)

	for who, cli := range map[string]evaluatorv1.MonitorServiceClient{"vision/queue": carol, "queue": alice} {
		list, err := cli.ListAlertRules(ctx, &evaluatorv1.ListAlertRulesRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetRules(), 1)
		require.Equal(t, who, list.GetRules()[0].GetName())
	}
	_, err = alice.GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: "vision/queue"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = alice.DeleteAlertRule(ctx, &evaluatorv1.DeleteAlertRuleRequest{Name: "vision/queue"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = carol.DeleteAlertRule(ctx, &evaluatorv1.DeleteAlertRuleRequest{Name: "queue"})
	require.NoError(t, err)
	got, err := alice.GetAlertRule(ctx, &evaluatorv1.GetAlertRuleRequest{Name: "queue"})
	require.NoError(t, err, "deleting vision's rule leaves the default project's")
	require.Equal(t, "queue", got.GetRule().GetName())
}

// TestProjectPlatformSeries: a rule on job_failures counts its own
// project's jobs. A job that fails in vision fires vision's rule; the
// same rule in the default project, which holds no failed job, stays
// quiet (it counted the whole cluster before).
func TestProjectPlatformSeries(t *testing.T) {
	t.Parallel()
	c, _, adminIAM := projectCluster(t, nil, withFastMonitor(10*time.Second))
	ctx := t.Context()
	// A process job runs a command: a project admin's to submit.
	veraTok := mustToken(t, adminIAM, "vera", &iamv1.Binding{Project: "vision", Role: "admin"})
	aliceTok := mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "editor"})
	veraConn, aliceConn := dialAs(t, c.Addrs.GRPC, veraTok), dialAs(t, c.Addrs.GRPC, aliceTok)
	rule := &evaluatorv1.AlertRule{Name: "failing", Series: "job_failures",
		Comparison: evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL, Threshold: 1}
	for _, conn := range []*grpc.ClientConn{veraConn, aliceConn} {
		_, err := evaluatorv1.NewMonitorServiceClient(conn).CreateAlertRule(ctx, &evaluatorv1.CreateAlertRuleRequest{Rule: rule})
		require.NoError(t, err)
	}
	_, err := registryv1.NewRegistryServiceClient(veraConn).CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "failing"}})
	require.NoError(t, err)
	sc := schedulerv1.NewSchedulerServiceClient(veraConn)
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Model: "failing",
		Runtime: &schedulerv1.JobSpec_Process{Process: &schedulerv1.ProcessRuntime{Command: "/bin/sh", Args: []string{"-c", "exit 3"}}}}})
	require.NoError(t, err)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_FAILED, waitJob(t, sc, sub.Job.Id, time.Minute).State)

	firing := func(conn *grpc.ClientConn, name string) bool {
		resp, err := evaluatorv1.NewMonitorServiceClient(conn).ListAlerts(ctx, &evaluatorv1.ListAlertsRequest{Rule: name})
		require.NoError(t, err)
		return len(resp.GetAlerts()) > 0
	}
	eventually(t, 20*time.Second, "vision's rule fires", func() bool { return firing(veraConn, "failing") })
	// The default project's rule had as many rounds (every 200 ms) to
	// count the failure, and a few more.
	time.Sleep(time.Second)
	require.False(t, firing(aliceConn, "failing"), "the default project's rule counts no other project's jobs")
}

// TestProjectRuntimes: a project's admin makes runtimes for the
// project's deployments (an editor may not: a runtime runs a command);
// the default project's are the cluster's, made by a cluster-admin only,
// and serve every project. A deployment picks among its project's and
// the default project's, a name said bare finding its project's first;
// another project's runtime is NotFound, never listed, never picked.
func TestProjectRuntimes(t *testing.T) {
	t.Parallel()
	c, admin, adminIAM := projectCluster(t, nil, withFastGateway())
	ctx := t.Context()
	rtAs := func(tok string) gatewayv1.RuntimeServiceClient {
		return gatewayv1.NewRuntimeServiceClient(dialAs(t, c.Addrs.GRPC, tok))
	}
	vadminTok := mustToken(t, adminIAM, "vera", &iamv1.Binding{Project: "vision", Role: "admin"})
	carolTok := mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "editor"})
	aliceTok := mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "editor"})
	danaTok := mustToken(t, adminIAM, "dana", &iamv1.Binding{Project: "default", Role: "admin"})
	torch := func(priority int32) *gatewayv1.Runtime {
		return &gatewayv1.Runtime{Name: "torch", Formats: []*gatewayv1.RuntimeFormat{{Name: "pytorch", Priority: priority}}, Server: torchServer()}
	}

	mine, err := rtAs(vadminTok).CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: torch(5)})
	require.NoError(t, err)
	require.Equal(t, "vision/torch", mine.GetRuntime().GetName())
	for who, tok := range map[string]string{"carol (editor)": carolTok, "dana (the default project's admin)": danaTok} {
		_, err = rtAs(tok).CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: torch(5)})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%s: %v", who, err)
	}
	shared, err := rtAs(admin).CreateRuntime(ctx, &gatewayv1.CreateRuntimeRequest{Runtime: torch(50)})
	require.NoError(t, err)
	require.Equal(t, "torch", shared.GetRuntime().GetName())

	got, err := rtAs(carolTok).GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: "torch"})
	require.NoError(t, err)
	require.Equal(t, "vision/torch", got.GetRuntime().GetName(), "a bare name finds the project's own first")
	got, err = rtAs(aliceTok).GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: "torch"})
	require.NoError(t, err)
	require.Equal(t, "torch", got.GetRuntime().GetName())
	_, err = rtAs(aliceTok).GetRuntime(ctx, &gatewayv1.GetRuntimeRequest{Name: "vision/torch"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	listed := func(tok string) []string {
		resp, err := rtAs(tok).ListRuntimes(ctx, &gatewayv1.ListRuntimesRequest{PageSize: 1000})
		require.NoError(t, err)
		var out []string
		for _, r := range resp.GetRuntimes() {
			if !r.GetBuiltin() {
				out = append(out, r.GetName())
			}
		}
		return out
	}
	require.Equal(t, []string{"torch", "vision/torch"}, listed(carolTok))
	require.Equal(t, []string{"torch"}, listed(aliceTok))

	// Deployments pick among what their project may run: vision's names
	// its own, the default project's never picks vision's.
	uploadVersion(t, c, "vision/net", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, []byte("weights"))
	uploadVersion(t, c, "net", registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, []byte("weights"))
	d, err := gatewayv1.NewDeploymentServiceClient(dialAs(t, c.Addrs.GRPC, carolTok)).CreateDeployment(ctx,
		&gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{Model: "net@1", Runtime: "torch"}})
	require.NoError(t, err)
	require.Equal(t, "vision/torch", d.GetDeployment().GetStatus().GetRuntime())
	d, err = gatewayv1.NewDeploymentServiceClient(dialAs(t, c.Addrs.GRPC, aliceTok)).CreateDeployment(ctx,
		&gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{Model: "net@1"}})
	require.NoError(t, err)
	require.Equal(t, "torch", d.GetDeployment().GetStatus().GetRuntime())

	// A project's admin ships code for the project's process jobs (a
	// bundle), an editor may not.
	code := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(code, "hello.txt"), []byte("hi"), 0o644))
	_, err = runCLI(t, c, "--token", carolTok, "train", "--model", "net", "--command", "cat", "--bundle", code, "--", "hello.txt")
	require.Error(t, err, "an editor runs no command")
	out, err := runCLI(t, c, "--token", vadminTok, "train", "--model", "net", "--command", "sh", "--bundle", code, "-o", "json",
		"--", "-c", `cp hello.txt "$BMAAS_OUTPUT_DIR/"`)
	require.NoError(t, err)
	var job struct {
		ID   string
		Spec struct{ Project string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &job), out)
	require.Equal(t, "vision", job.Spec.Project)
	ran := waitJob(t, schedulerv1.NewSchedulerServiceClient(dialAs(t, c.Addrs.GRPC, vadminTok)), job.ID, 2*time.Minute)
	require.Equal(t, schedulerv1.JobState_JOB_STATE_SUCCEEDED, ran.GetState(), "reason: %s", ran.GetReason())
	v, err := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, vadminTok)).GetModelVersion(ctx,
		&registryv1.GetModelVersionRequest{Model: "net", Version: "latest"})
	require.NoError(t, err)
	require.Equal(t, job.ID, v.GetVersion().GetLineage().GetJobId(), "the bundle's file, registered as vision/net's version")

	// vision's runtime is in use by vision's deployment.
	_, err = rtAs(vadminTok).DeleteRuntime(ctx, &gatewayv1.DeleteRuntimeRequest{Name: "torch"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "vision/net")
}

// watchKeys follows /v1/events:watch as tok for kinds and sends the key
// of each event it relays, until the test ends; it returns once the
// watch is open.
func watchKeys(t *testing.T, c *harness.Cluster, tok, kinds string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", c.HTTP+"/v1/events:watch?kinds="+kinds, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.HTTPClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e struct{ Key string }
			if json.Unmarshal([]byte(data), &e) == nil && e.Key != "" {
				out <- e.Key
			}
		}
	}()
	return out
}

// untilKey reads keys until want, returning those before it.
func untilKey(t *testing.T, keys <-chan string, want string) []string {
	t.Helper()
	var before []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case k := <-keys:
			if k == want {
				return before
			}
			before = append(before, k)
		case <-timeout:
			t.Fatalf("no event of %s within 30s; saw %v", want, before)
		}
	}
}

// TestProjectEvents: the event watch relays an identity the events of its
// projects' models only.
func TestProjectEvents(t *testing.T) {
	t.Parallel()
	c, admin, adminIAM := projectCluster(t, nil)
	ctx := t.Context()
	carol := watchKeys(t, c, mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "vision", Role: "viewer"}), "model")
	alice := watchKeys(t, c, mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "viewer"}), "model")
	reg := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	for _, name := range []string{"vision/one", "one", "vision/two", "two"} {
		_, err := reg.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: name}})
		require.NoError(t, err)
	}
	require.Equal(t, []string{"vision/one"}, untilKey(t, carol, "vision/two"))
	require.Equal(t, []string{"one"}, untilKey(t, alice, "two"))
}
