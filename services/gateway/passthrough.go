package gateway

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/lane"
)

// ModelInfer over gRPC is a pass-through: the gateway reads model_name
// (field 1) and model_version (field 2) of the ModelInferRequest from its
// wire bytes to route it, and forwards the request frame to the replica
// and the replica's response frame to the client without decoding either.
// The server must run grpcsrv.Codec (grpcsrv.New does). REST and the
// other v2 calls decode as before.
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

// inferRaw routes one ModelInferRequest frame to a ready replica (another
// one when a replica fails before answering: the frame is sent again).
func (s *Service) inferRaw(ctx context.Context, req *grpcsrv.RawFrame) (*grpcsrv.RawFrame, error) {
	defer req.Free()
	name, version, err := grpcsrv.ScanStrings(req.Bytes(), fieldModelName, fieldModelVersion)
	if err != nil {
		return nil, apierr.Invalid("request", "not a ModelInferRequest: %v", err)
	}
	if name == "" {
		return nil, apierr.Invalid("model_name", "required")
	}
	var resp *grpcsrv.RawFrame
	err = s.forward(ctx, name, version, func(ctx context.Context, b *backend) error {
		if b.lane != nil {
			buf, err := b.lane.Call(ctx, lane.MethodModelInfer, req.Bytes())
			s.met.count(true, err)
			if err == nil {
				resp = grpcsrv.FrameOf(buf)
			}
			return err
		}
		resp = new(grpcsrv.RawFrame)
		err := b.conn.Invoke(ctx, inference.GRPCInferenceService_ModelInfer_FullMethodName, req, resp, rawCall)
		s.met.count(false, err)
		return err
	})
	if err != nil {
		if resp != nil {
			resp.Free()
		}
		return nil, err
	}
	return resp, nil
}
