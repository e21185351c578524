package gateway

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/serving"
)

// dataPlane serves KServe v2 gRPC by proxying to the replicas.
type dataPlane struct {
	inference.UnimplementedGRPCInferenceServiceServer
	s *Service
}

func (p *dataPlane) ServerLive(context.Context, *inference.ServerLiveRequest) (*inference.ServerLiveResponse, error) {
	return &inference.ServerLiveResponse{Live: true}, nil
}

func (p *dataPlane) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	return &inference.ServerReadyResponse{Ready: true}, nil
}

func (p *dataPlane) ServerMetadata(context.Context, *inference.ServerMetadataRequest) (*inference.ServerMetadataResponse, error) {
	return serverMetadata(), nil
}

func serverMetadata() *inference.ServerMetadataResponse {
	// REST takes and answers binary tensor data (rest.go).
	return &inference.ServerMetadataResponse{Name: "bmaas-gateway", Version: serving.ServerVersion, Extensions: []string{binaryExtension}}
}

func (p *dataPlane) ModelReady(ctx context.Context, req *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	ready, err := p.s.ModelReady(ctx, req.Name, req.Version)
	return &inference.ModelReadyResponse{Ready: ready}, err
}

func (p *dataPlane) ModelMetadata(ctx context.Context, req *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	return p.s.ModelMetadata(ctx, req.Name, req.Version)
}

// ModelReady reports whether a deployment (at a version) has a ready
// replica; NotFound when there is no such deployment.
func (s *Service) ModelReady(ctx context.Context, name, version string) (bool, error) {
	want, err := s.versionOf(ctx, name, version)
	if err != nil {
		return false, err
	}
	bs, _ := s.router.backends(name)
	return pick(bs, want, 0, nil) != nil, nil
}

// ModelMetadata asks a ready replica, over gRPC or, for a replica that
// speaks v2 REST only, HTTP (holding the request while the deployment
// scales from zero).
func (s *Service) ModelMetadata(ctx context.Context, name, version string) (*inference.ModelMetadataResponse, error) {
	var resp *inference.ModelMetadataResponse
	err := s.forward(ctx, name, version, func(ctx context.Context, b *backend) (err error) {
		if b.conn == nil && b.http != nil {
			resp, err = s.bridgeMetadata(ctx, b, name, version)
			return err
		}
		resp, err = b.cli.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: name, Version: version})
		s.met.count(false, err)
		return err
	})
	return resp, err
}

// Infer routes one decoded inference request (the REST routes) through
// the routing core of gRPC's pass-through (infer): the request is
// encoded once, the replica's answer decoded once.
func (s *Service) Infer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	if req.ModelName == "" {
		return nil, apierr.Invalid("model_name", "required")
	}
	wire, err := proto.Marshal(req)
	if err != nil {
		return nil, apierr.Invalid("request", "unencodable: %v", err)
	}
	out, err := s.infer(ctx, req.ModelName, req.ModelVersion, grpcsrv.FrameOf(mem.SliceBuffer(wire)))
	if err != nil {
		return nil, err
	}
	defer out.Free()
	resp := &inference.ModelInferResponse{}
	if err := proto.Unmarshal(out.Bytes(), resp); err != nil {
		return nil, status.Errorf(codes.Internal, "a replica of %s answered an undecodable response: %v", req.ModelName, err)
	}
	return resp, nil
}

// versionOf checks the deployment exists and parses a requested version
// (0: any).
func (s *Service) versionOf(ctx context.Context, name, version string) (int64, error) {
	if name == "" {
		return 0, apierr.Invalid("name", "required")
	}
	if ok, err := s.depCache().Has(ctx, deploymentKey(name)); err != nil {
		return 0, err
	} else if !ok {
		return 0, apierr.NotFound("deployment", name)
	}
	if version == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil || v <= 0 {
		return 0, apierr.NotFound("model version", name+"/"+version)
	}
	return v, nil
}

// forward calls a ready replica of the deployment: power of two choices
// on outstanding requests, the canary's share of requests to the canary
// version, another replica when one fails before answering. The request's
// deadline is the caller's or the gateway's, whichever is sooner.
//
// Without a ready replica, a request to a deployment at zero, or whose
// replica is on its way, is held until one is ready, for at most the
// cold-start timeout (and never past its deadline); a request to a
// deployment whose replicas cannot be placed answers Unavailable at once.
// Either way the answer says why there is no replica.
func (s *Service) forward(ctx context.Context, name, version string, call func(context.Context, *backend) error) error {
	return s.forwardWithin(ctx, s.cfg.RequestTimeout, name, version, nil, call)
}

// forwardWithin is forward with a bound of its own on the request
// (generation routes take longer than one inference) and the prompt's
// prefix hashes for prefix routing (routing.go; nil for none).
func (s *Service) forwardWithin(ctx context.Context, timeout time.Duration, name, version string, blocks []uint64, call func(context.Context, *backend) error) error {
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	want, err := s.versionOf(ctx, name, version)
	if err != nil {
		return err
	}
	d := s.stats.begin(name)
	defer s.stats.end(d)
	var (
		tried   []*backend
		lastErr error
		h       *hold
	)
	for {
		bs, changed := s.router.backends(name)
		v, avoid := want, int64(0)
		if want == 0 {
			v, avoid = s.split(ctx, name, bs)
		}
		b := s.choose(ctx, name, bs, v, avoid, tried, blocks)
		if b == nil && v != want {
			b = s.choose(ctx, name, bs, want, 0, tried, blocks)
		}
		if b == nil {
			if want != 0 && len(bs) > 0 && pick(bs, want, 0, nil) == nil {
				return apierr.NotFound("model version", name+"/"+version)
			}
			if h == nil {
				var err error
				if h, err = s.newHold(ctx, name); err != nil {
					return err
				}
				defer h.release()
			}
			tried = tried[:0]
			if err := h.wait(ctx, changed); err != nil {
				if lastErr != nil && ctx.Err() != nil {
					return lastErr
				}
				return err
			}
			continue
		}
		if sv, ok := ctx.Value(servedKey{}).(*int64); ok {
			*sv = b.ep.Version // for the payload log
		}
		b.inflight.Add(1)
		err := call(ctx, b)
		b.inflight.Add(-1)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		tried, lastErr = append(tried, b), err
	}
}

// retryable: the replica did not answer (it is gone or going).
func retryable(err error) bool {
	c := status.Code(err)
	return c == codes.Unavailable || c == codes.Canceled
}

// split picks the canary version for its share of the requests; the
// others avoid it.
func (s *Service) split(ctx context.Context, name string, bs []*backend) (version, avoid int64) {
	if len(bs) < 2 {
		return 0, 0
	}
	var percent int32
	var canary int64
	err := s.depCache().View(ctx, deploymentKey(name), func(d *gatewayv1.Deployment) {
		percent, canary = d.GetCanaryPercent(), d.GetCanaryVersion()
	})
	if err != nil || percent <= 0 || canary <= 0 {
		return 0, 0
	}
	if rand.IntN(100) < int(percent) {
		return canary, 0
	}
	return 0, canary
}
