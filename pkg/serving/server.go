package serving

import (
	"context"
	"strings"
	"sync"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// ServerName and ServerVersion answer ServerMetadata.
const (
	ServerName    = "bmaas"
	ServerVersion = "1"
)

// Loader loads (or reloads) the model named name for RepositoryModelLoad.
type Loader func(ctx context.Context, name string) (*Model, error)

// Server serves loaded models over the KServe v2 gRPC protocol.
type Server struct {
	inference.UnimplementedGRPCInferenceServiceServer
	mu     sync.RWMutex
	models map[string]*Model
	loader Loader
}

// NewServer returns a server of models; loader may be nil (then
// RepositoryModelLoad answers Unimplemented).
func NewServer(loader Loader, models ...*Model) *Server {
	s := &Server{models: map[string]*Model{}, loader: loader}
	for _, m := range models {
		s.models[m.Name] = m
	}
	return s
}

// Add serves m under its name, replacing (and closing) a model of the
// same name.
func (s *Server) Add(m *Model) {
	s.mu.Lock()
	old := s.models[m.Name]
	s.models[m.Name] = m
	s.mu.Unlock()
	if old != nil && old != m {
		old.Close()
	}
}

// Model returns the model named name.
func (s *Server) Model(name string) (*Model, error) {
	s.mu.RLock()
	m := s.models[name]
	if m == nil {
		// A project's deployment, said with its project
		// ("vision/detect"): the replica serves it as "detect".
		if _, bare, ok := strings.Cut(name, "/"); ok {
			m = s.models[bare]
		}
	}
	s.mu.RUnlock()
	if m == nil {
		return nil, apierr.NotFound("model", name)
	}
	return m, nil
}

// Ready reports whether every model is ready (and there is one).
func (s *Server) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.models {
		if !m.Ready() {
			return false
		}
	}
	return len(s.models) > 0
}

// Close unloads every model.
func (s *Server) Close() {
	s.mu.Lock()
	ms := s.models
	s.models = map[string]*Model{}
	s.mu.Unlock()
	for _, m := range ms {
		m.Close()
	}
}

func (s *Server) ServerLive(context.Context, *inference.ServerLiveRequest) (*inference.ServerLiveResponse, error) {
	return &inference.ServerLiveResponse{Live: true}, nil
}

func (s *Server) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	return &inference.ServerReadyResponse{Ready: s.Ready()}, nil
}

func (s *Server) ServerMetadata(context.Context, *inference.ServerMetadataRequest) (*inference.ServerMetadataResponse, error) {
	return &inference.ServerMetadataResponse{Name: ServerName, Version: ServerVersion, Extensions: []string{"model_repository"}}, nil
}

func (s *Server) ModelReady(_ context.Context, req *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	m, err := s.Model(req.Name)
	if err != nil {
		return nil, err
	}
	if err := m.checkVersion(req.Version); err != nil {
		return nil, err
	}
	return &inference.ModelReadyResponse{Ready: m.Ready()}, nil
}

func (s *Server) ModelMetadata(_ context.Context, req *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	m, err := s.Model(req.Name)
	if err != nil {
		return nil, err
	}
	if err := m.checkVersion(req.Version); err != nil {
		return nil, err
	}
	return m.Metadata(), nil
}

// Metadata describes the model as ModelMetadata answers.
func (m *Model) Metadata() *inference.ModelMetadataResponse {
	conv := func(ts []TensorSpec) []*inference.ModelMetadataResponse_TensorMetadata {
		out := make([]*inference.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &inference.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &inference.ModelMetadataResponse{Name: m.Name, Versions: []string{m.VersionString()}, Platform: m.Platform,
		Inputs: conv(m.Inputs), Outputs: conv(m.Outputs)}
}

func (s *Server) ModelInfer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	if req.ModelName == "" {
		return nil, apierr.Invalid("model_name", "required")
	}
	m, err := s.Model(req.ModelName)
	if err != nil {
		return nil, err
	}
	return m.Infer(ctx, req)
}

func (s *Server) RepositoryModelLoad(ctx context.Context, req *inference.RepositoryModelLoadRequest) (*inference.RepositoryModelLoadResponse, error) {
	if s.loader == nil {
		return nil, apierr.ErrUnimplemented
	}
	if req.ModelName == "" {
		return nil, apierr.Invalid("model_name", "required")
	}
	m, err := s.loader(ctx, req.ModelName)
	if err != nil {
		return nil, err
	}
	s.Add(m)
	return &inference.RepositoryModelLoadResponse{}, nil
}

func (s *Server) RepositoryModelUnload(_ context.Context, req *inference.RepositoryModelUnloadRequest) (*inference.RepositoryModelUnloadResponse, error) {
	s.mu.Lock()
	m := s.models[req.ModelName]
	delete(s.models, req.ModelName)
	s.mu.Unlock()
	if m == nil {
		return nil, apierr.NotFound("model", req.ModelName)
	}
	m.Close()
	return &inference.RepositoryModelUnloadResponse{}, nil
}
