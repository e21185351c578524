package registry

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/chunkstream"
)

// RawHTTP serves plain-HTTP artifact and dataset bytes for curl users,
// through the registry's gRPC client:
//
//	PUT /v1/models/{model}/artifact?format=onnx&filename=f.onnx   body: the artifact
//	GET /v1/models/{model}/versions/{version}/artifact
//	PUT /v1/datasets/{dataset}/csv?filename=f.csv                 body: the CSV
//	GET /v1/datasets/{dataset}/versions/{version}/csv
//
// An upload may carry its digest in the X-Checksum-Sha256 header; without
// it the digest computed on the way in is sent as the trailer.
func RawHTTP(mux *http.ServeMux, c registryv1.RegistryServiceClient) {
	mux.HandleFunc(routePutArtifact, func(w http.ResponseWriter, r *http.Request) { putArtifact(w, r, c) })
	mux.HandleFunc("GET /v1/models/{model}/versions/{version}/artifact", func(w http.ResponseWriter, r *http.Request) { getArtifact(w, r, c) })
	mux.HandleFunc(routePutCSV, func(w http.ResponseWriter, r *http.Request) { putCSV(w, r, c) })
	mux.HandleFunc("GET /v1/datasets/{dataset}/versions/{version}/csv", func(w http.ResponseWriter, r *http.Request) { getCSV(w, r, c) })
}

// The raw upload routes stream bytes of any content type and size.
const (
	routePutArtifact = "PUT /v1/models/{model}/artifact"
	routePutCSV      = "PUT /v1/datasets/{dataset}/csv"
)

// IsUploadRoute reports whether a ServeMux pattern is one of the raw
// upload routes RawHTTP mounts.
func IsUploadRoute(pattern string) bool { return pattern == routePutArtifact || pattern == routePutCSV }

// writeError answers err as every REST route does (apierr.WriteHTTP).
func writeError(w http.ResponseWriter, err error) { apierr.WriteHTTP(w, err) }

func writeProto(w http.ResponseWriter, code int, m proto.Message) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func putArtifact(w http.ResponseWriter, r *http.Request, c registryv1.RegistryServiceClient) {
	q := r.URL.Query()
	spec := &registryv1.ModelVersionSpec{Filename: q.Get("filename"), Description: q.Get("description")}
	if f := q.Get("format"); f != "" {
		v, ok := registryv1.ModelFormat_value["MODEL_FORMAT_"+upper(f)]
		if !ok {
			writeError(w, status.Errorf(codes.InvalidArgument, "format: unknown %q (native, onnx, pytorch, other)", f))
			return
		}
		spec.Format = registryv1.ModelFormat(v)
	} else if spec.Filename != "" {
		spec.Format = DetectFormat(spec.Filename)
	}
	stream, err := c.CreateModelVersion(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	hdr := &registryv1.CreateModelVersionHeader{Model: r.PathValue("model"), Spec: spec,
		Sha256: r.Header.Get("X-Checksum-Sha256"), SizeBytes: max(r.ContentLength, 0)}
	resp, err := chunkstream.Send(r.Body, stream, hdr.Sha256 != "",
		&registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{Header: hdr}},
		func(b []byte) *registryv1.CreateModelVersionRequest {
			return &registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: b}}
		},
		func(t *registryv1.UploadTrailer) *registryv1.CreateModelVersionRequest {
			return &registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Trailer{Trailer: t}}
		})
	if err != nil {
		writeError(w, err)
		return
	}
	writeProto(w, http.StatusCreated, resp.GetVersion())
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func getArtifact(w http.ResponseWriter, r *http.Request, c registryv1.RegistryServiceClient) {
	stream, err := c.DownloadModelVersion(r.Context(), &registryv1.DownloadModelVersionRequest{
		Model: r.PathValue("model"), Version: r.PathValue("version")})
	if err != nil {
		writeError(w, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		writeError(w, err)
		return
	}
	v := first.GetVersion()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(v.GetSizeBytes(), 10))
	w.Header().Set("X-Checksum-Sha256", v.GetSha256())
	w.Header().Set("ETag", `"`+v.GetSha256()+`"`)
	w.Header().Set("X-Bmaas-Version", strconv.FormatInt(v.GetVersion(), 10))
	if v.GetFilename() != "" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", v.GetFilename()))
	}
	streamBody(w, func() ([]byte, error) { m, err := stream.Recv(); return m.GetChunk(), err })
}

func putCSV(w http.ResponseWriter, r *http.Request, c registryv1.RegistryServiceClient) {
	q := r.URL.Query()
	resp, err := chunkstream.UploadDataset(r.Context(), c, &registryv1.UploadDatasetHeader{Name: r.PathValue("dataset"),
		Filename: q.Get("filename"), Description: q.Get("description"), Sha256: r.Header.Get("X-Checksum-Sha256")}, r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeProto(w, http.StatusCreated, resp)
}

func getCSV(w http.ResponseWriter, r *http.Request, c registryv1.RegistryServiceClient) {
	stream, err := c.DownloadDataset(r.Context(), &registryv1.DownloadDatasetRequest{
		Dataset: r.PathValue("dataset"), Version: r.PathValue("version")})
	if err != nil {
		writeError(w, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		writeError(w, err)
		return
	}
	dv := first.GetVersion()
	w.Header().Set("Content-Type", "text/csv")
	w.Header().Set("Content-Length", strconv.FormatInt(dv.GetSizeBytes(), 10))
	w.Header().Set("X-Checksum-Sha256", dv.GetSha256())
	streamBody(w, func() ([]byte, error) { m, err := stream.Recv(); return m.GetChunk(), err })
}

// streamBody writes the received chunks as the response body. Headers are
// sent by then, so a stream that breaks shows as a short body against the
// Content-Length and the X-Checksum-Sha256 already given.
func streamBody(w io.Writer, recv func() ([]byte, error)) {
	_ = chunkstream.RecvAll(recv, w)
}
