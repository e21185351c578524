package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// fakeRegistry is a small in-memory registry for driving the CLI in tests
// without a network; it checks the upload protocol the real server expects.
type fakeRegistry struct {
	registryv1.UnimplementedRegistryServiceServer
	mu        sync.Mutex
	models    map[string]*registryv1.Model
	versions  map[string][]*registryv1.ModelVersion
	blobs     map[string][]byte
	datasets  map[string]*registryv1.DatasetVersion
	lastAuth  string
	maxChunk  int
	corruptDL bool
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{models: map[string]*registryv1.Model{}, versions: map[string][]*registryv1.ModelVersion{},
		blobs: map[string][]byte{}, datasets: map[string]*registryv1.DatasetVersion{}}
}

// start serves f on an in-memory listener and returns globals wired to it.
func (f *fakeRegistry) start(t *testing.T) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo,
		h grpc.UnaryHandler) (any, error) {
		f.recordAuth(ctx)
		return h(ctx, req)
	}))
	registryv1.RegisterRegistryServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

func (f *fakeRegistry) recordAuth(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAuth = ""
	if v := md.Get("authorization"); len(v) > 0 {
		f.lastAuth = v[0]
	}
}

func (f *fakeRegistry) CreateModel(_ context.Context, r *registryv1.CreateModelRequest) (*registryv1.CreateModelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.GetModel().GetName()
	if _, ok := f.models[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "model %q already exists", name)
	}
	m := &registryv1.Model{Name: name, Description: r.GetModel().GetDescription(), TaskType: r.GetModel().GetTaskType(),
		Labels: r.GetModel().GetLabels(), Aliases: map[string]int64{}, Etag: "1"}
	f.models[name] = m
	return &registryv1.CreateModelResponse{Model: m}, nil
}

func (f *fakeRegistry) GetModel(_ context.Context, r *registryv1.GetModelRequest) (*registryv1.GetModelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.models[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %q not found", r.GetName())
	}
	return &registryv1.GetModelResponse{Model: m}, nil
}

// ListModels returns one model per page to exercise paging.
func (f *fakeRegistry) ListModels(_ context.Context, r *registryv1.ListModelsRequest) (*registryv1.ListModelsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.models))
	for n := range f.models {
		names = append(names, n)
	}
	sort.Strings(names)
	i := 0
	if r.GetPageToken() != "" {
		i, _ = strconv.Atoi(r.GetPageToken())
	}
	resp := &registryv1.ListModelsResponse{}
	if i < len(names) {
		resp.Models = []*registryv1.Model{f.models[names[i]]}
	}
	if i+1 < len(names) {
		resp.NextPageToken = strconv.Itoa(i + 1)
	}
	return resp, nil
}

func (f *fakeRegistry) resolve(model, ref string) (*registryv1.ModelVersion, error) {
	m, ok := f.models[model]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %q not found", model)
	}
	vs := f.versions[model]
	n, err := strconv.ParseInt(ref, 10, 64)
	switch {
	case ref == "latest" && len(vs) > 0:
		return vs[len(vs)-1], nil
	case err == nil && n >= 1 && int(n) <= len(vs):
		return vs[n-1], nil
	case m.Aliases[ref] > 0:
		return vs[m.Aliases[ref]-1], nil
	}
	return nil, status.Errorf(codes.NotFound, "version %q of model %q not found", ref, model)
}

func (f *fakeRegistry) GetModelVersion(_ context.Context, r *registryv1.GetModelVersionRequest) (*registryv1.GetModelVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.resolve(r.GetModel(), r.GetVersion())
	return &registryv1.GetModelVersionResponse{Version: v}, err
}

func (f *fakeRegistry) CreateModelVersion(s grpc.ClientStreamingServer[registryv1.CreateModelVersionRequest, registryv1.CreateModelVersionResponse]) error {
	f.recordAuth(s.Context())
	first, err := s.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return status.Error(codes.InvalidArgument, "header: the first message must be the header")
	}
	f.mu.Lock()
	_, ok := f.models[hdr.GetModel()]
	f.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "model %q not found", hdr.GetModel())
	}
	h := sha256.New()
	var data bytes.Buffer
	for {
		msg, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.maxChunk = max(f.maxChunk, len(msg.GetChunk()))
		f.mu.Unlock()
		h.Write(msg.GetChunk())
		data.Write(msg.GetChunk())
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != hdr.GetSha256() || int64(data.Len()) != hdr.GetSizeBytes() {
		return status.Errorf(codes.InvalidArgument, "sha256: received %s, header says %s", sum, hdr.GetSha256())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.models[hdr.GetModel()]
	m.LatestVersion++
	v := &registryv1.ModelVersion{Model: m.Name, Version: m.LatestVersion, Status: registryv1.VersionStatus_VERSION_STATUS_READY,
		Format: hdr.GetSpec().GetFormat(), Sha256: sum, SizeBytes: int64(data.Len()), Filename: hdr.GetSpec().GetFilename(),
		Metrics: hdr.GetSpec().GetMetrics(), Hyperparameters: hdr.GetSpec().GetHyperparameters()}
	f.versions[m.Name] = append(f.versions[m.Name], v)
	f.blobs[sum] = data.Bytes()
	return s.SendAndClose(&registryv1.CreateModelVersionResponse{Version: v})
}

func (f *fakeRegistry) DownloadModelVersion(r *registryv1.DownloadModelVersionRequest, s grpc.ServerStreamingServer[registryv1.DownloadModelVersionResponse]) error {
	f.mu.Lock()
	v, err := f.resolve(r.GetModel(), r.GetVersion())
	var data []byte
	if err == nil {
		data = bytes.Clone(f.blobs[v.GetSha256()])
	}
	corrupt := f.corruptDL
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if corrupt {
		data[len(data)/2] ^= 0xff
	}
	if err := s.Send(&registryv1.DownloadModelVersionResponse{Payload: &registryv1.DownloadModelVersionResponse_Version{Version: v}}); err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(len(data), 256<<10)
		if err := s.Send(&registryv1.DownloadModelVersionResponse{Payload: &registryv1.DownloadModelVersionResponse_Chunk{Chunk: data[:n]}}); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func (f *fakeRegistry) SetAlias(_ context.Context, r *registryv1.SetAliasRequest) (*registryv1.SetAliasResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.resolve(r.GetModel(), r.GetVersion())
	if err != nil {
		return nil, err
	}
	m := f.models[r.GetModel()]
	prev := m.Aliases[r.GetAlias()]
	m.Aliases[r.GetAlias()] = v.GetVersion()
	return &registryv1.SetAliasResponse{Model: m, PreviousVersion: prev}, nil
}

func (f *fakeRegistry) UploadDataset(s grpc.ClientStreamingServer[registryv1.UploadDatasetRequest, registryv1.UploadDatasetResponse]) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	var n int64
	for {
		msg, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		n += int64(len(msg.GetChunk()))
	}
	v := &registryv1.DatasetVersion{Dataset: hdr.GetName(), Version: 1, Sha256: hdr.GetSha256(), SizeBytes: n,
		Filename: hdr.GetFilename(), Stats: &commonv1.DatasetStats{Rows: 2, Columns: []*commonv1.ColumnStats{
			{Name: "sepal_length", Kind: commonv1.ValueKind_VALUE_KIND_NUMERIC, Count: 2, Mean: 5.5, Std: 0.7071, Min: 5, Max: 6},
			{Name: "species", Kind: commonv1.ValueKind_VALUE_KIND_CATEGORICAL, Count: 1, Missing: 1, Distinct: 1},
		}}}
	f.mu.Lock()
	f.datasets[hdr.GetName()] = v
	f.mu.Unlock()
	return s.SendAndClose(&registryv1.UploadDatasetResponse{Dataset: &registryv1.Dataset{Name: hdr.GetName()}, Version: v})
}

func (f *fakeRegistry) String() string {
	return fmt.Sprintf("fake registry with %d models", len(f.models))
}
