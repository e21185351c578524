package gateway

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/lane"
)

// ModelInfer over gRPC is a pass-through: the gateway reads model_name
// (field 1) and model_version (field 2) of the ModelInferRequest from its
// wire bytes to route it, and forwards the request frame to the replica
// and the replica's response frame to the client without decoding either.
// The server must run grpcsrv.Codec (grpcsrv.New does). REST's
// ModelInfer (Service.Infer) encodes its request and shares the routing
// core (infer); the other v2 calls decode.
const (
	fieldModelName    = 1
	fieldModelVersion = 2
)

// rawCall sends and receives raw frames on a call to a replica.
var rawCall = grpc.ForceCodecV2(grpcsrv.NewCodec())

// inferenceDesc is the KServe v2 service description with ModelInfer
// taking and returning raw frames.
func inferenceDesc() *grpc.ServiceDesc {
	d := inference.GRPCInferenceService_ServiceDesc
	d.Methods = slices.Clone(d.Methods)
	for i := range d.Methods {
		if d.Methods[i].MethodName == "ModelInfer" {
			d.Methods[i].Handler = modelInferRaw
		}
	}
	return &d
}

var modelInferInfo = &grpc.UnaryServerInfo{FullMethod: inference.GRPCInferenceService_ModelInfer_FullMethodName}

func modelInferRaw(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(grpcsrv.RawFrame)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*dataPlane).s
	if interceptor == nil {
		return s.inferRaw(ctx, in)
	}
	return interceptor(ctx, in, modelInferInfo, func(ctx context.Context, req any) (any, error) {
		return s.inferRaw(ctx, req.(*grpcsrv.RawFrame))
	})
}

// deploymentIn is the deployment a call names: name as said ("detect",
// or "vision/detect"), qualified by the call's project (the guard's, or
// the Bmaas-Project header).
func deploymentIn(ctx context.Context, name string) string {
	return iam.QualifiedName(iam.ProjectFrom(ctx), name)
}

// inferRaw answers ModelInfer over gRPC: it reads the model's name and
// version off the frame and hands the frame to the routing core.
func (s *Service) inferRaw(ctx context.Context, req *grpcsrv.RawFrame) (*grpcsrv.RawFrame, error) {
	defer req.Free()
	ctx = grpcRequestID(ctx)
	name, version, err := grpcsrv.ScanStrings(req.Bytes(), fieldModelName, fieldModelVersion)
	if err != nil {
		return nil, apierr.Invalid("request", "not a ModelInferRequest: %v", err)
	}
	if name == "" {
		return nil, apierr.Invalid("model_name", "required")
	}
	name = deploymentIn(ctx, name)
	pc := s.payloadFor(ctx, name, "v2-grpc", req.Bytes())
	resp, err := s.infer(pc.withServed(ctx), name, version, req)
	if err == nil {
		pc.answered(200, resp.Bytes())
	}
	pc.done(err)
	return resp, err
}

// infer is the routing core of ModelInfer, gRPC's and REST's: forward
// picks the replica (canary, retries, load stats) and the request frame
// goes to it over its lane, over gRPC without the lane, or translated to
// v2 REST for a replica that speaks only that; the answer is the
// replica's response frame. req stays the caller's to free.
func (s *Service) infer(ctx context.Context, name, version string, req *grpcsrv.RawFrame) (*grpcsrv.RawFrame, error) {
	var resp *grpcsrv.RawFrame
	err := s.forward(ctx, name, version, func(ctx context.Context, b *backend) error {
		r, err := s.callReplica(ctx, b, req)
		resp = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// callReplica sends one request frame to one replica, over its lane,
// gRPC, or HTTP for a replica that speaks v2 REST only (bridgeInfer),
// and counts the call by transport and outcome.
func (s *Service) callReplica(ctx context.Context, b *backend, req *grpcsrv.RawFrame) (*grpcsrv.RawFrame, error) {
	if b.conn == nil && b.http != nil {
		return s.bridgeInfer(ctx, b, req)
	}
	if b.lane != nil {
		buf, err := b.lane.Call(ctx, lane.MethodModelInfer, req.Bytes())
		s.met.count(true, err)
		if err != nil {
			return nil, err
		}
		return grpcsrv.FrameOf(buf), nil
	}
	resp := new(grpcsrv.RawFrame)
	err := b.conn.Invoke(ctx, inference.GRPCInferenceService_ModelInfer_FullMethodName, req, resp, rawCall)
	s.met.count(false, err)
	if err != nil {
		resp.Free()
		return nil, err
	}
	return resp, nil
}
