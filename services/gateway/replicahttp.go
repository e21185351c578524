package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// maxReplicaAnswer bounds a replica's HTTP answer, as gRPC's receive
// limit bounds a gRPC replica's.
const maxReplicaAnswer = 64 << 20

// httpReplica is the HTTP client of one replica address and token: its
// own connections, so that they close with it. KServe v2 calls go over
// v2 (h1Pool); the OpenAI routes, which stream, over net/http's client.
type httpReplica struct {
	base   string // http://host:port
	auth   string // Bearer <token>
	v2     *h1Pool
	tr     *http.Transport
	client *http.Client
	// binary is whether the server takes binary tensor data: 0 not
	// known yet, binaryYes or binaryNo once its metadata answered.
	binary atomic.Int32
}

const (
	binaryYes = 1
	binaryNo  = 2
)

// binaryMin is the tensor size from which the replica gets binary data:
// 0 (none) unless its server metadata (GET /v2, asked once) lists the
// extension. A metadata call that gets no answer decides nothing: JSON
// this time, the question again next time.
func (h *httpReplica) binaryMin(ctx context.Context, dep string) int {
	switch h.binary.Load() {
	case binaryYes:
		return bridgeBinaryMin
	case binaryNo:
		return 0
	}
	rb, _, err := h.do(ctx, &h1Request{method: http.MethodGet, path: "/v2", auth: h.auth}, dep)
	if err != nil {
		if status.Code(err) != codes.Unavailable && ctx.Err() == nil {
			// It answered, without metadata.
			h.binary.Store(binaryNo)
		}
		return 0
	}
	defer bufPool.Put(rb)
	var md struct {
		Extensions []string `json:"extensions"`
	}
	if json.Unmarshal(*rb, &md) == nil && slices.Contains(md.Extensions, binaryExtension) {
		h.binary.Store(binaryYes)
		return bridgeBinaryMin
	}
	h.binary.Store(binaryNo)
	return 0
}

func newHTTPReplica(addr, token string) *httpReplica {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// Bodies are JSON and tensors: compressing them costs more than
		// it saves on a cluster's network.
		DisableCompression: true,
	}
	return &httpReplica{base: "http://" + addr, auth: "Bearer " + token, v2: newH1Pool(addr), tr: tr, client: &http.Client{Transport: tr}}
}

// close closes the replica's idle connections; calls in flight finish.
func (h *httpReplica) close() {
	h.v2.close()
	h.tr.CloseIdleConnections()
}

// do sends one request and reads a 200's body into a pooled buffer (the
// caller's to put back); any other answer is an error with the gRPC code
// of its HTTP status (httpError).
func (h *httpReplica) do(ctx context.Context, req *h1Request, dep string) (*[]byte, h1Answer, error) {
	bp := bufPool.Get().(*[]byte)
	b, a, err := h.v2.roundTrip(ctx, req, (*bp)[:0])
	*bp = b
	if err != nil {
		bufPool.Put(bp)
		var se *h1SendError
		switch {
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			return nil, a, status.FromContextError(cmp.Or(ctx.Err(), context.DeadlineExceeded)).Err()
		case errors.Is(err, errH1Header):
			return nil, a, apierr.Invalid("header", "%v", err)
		case errors.As(err, &se):
			// Refused, reset, unreachable: the replica is gone or
			// going, and forward tries another.
			return nil, a, status.Errorf(codes.Unavailable, "a replica of %s did not answer: %v", dep, err)
		}
		return nil, a, status.Errorf(codes.Unavailable, "a replica of %s broke off its answer: %v", dep, err)
	}
	if a.status != http.StatusOK {
		err := httpError(dep, a.status, b)
		bufPool.Put(bp)
		return nil, a, err
	}
	return bp, a, nil
}

// readAll appends r to b, up to maxReplicaAnswer bytes.
func readAll(b []byte, r io.Reader, size int64) ([]byte, error) {
	if size > maxReplicaAnswer {
		return b, fmt.Errorf("an answer of %d bytes is over %d", size, maxReplicaAnswer)
	}
	if size > 0 && int64(cap(b)) < size {
		b = make([]byte, 0, size)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > maxReplicaAnswer {
			return b, fmt.Errorf("an answer over %d bytes", maxReplicaAnswer)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// httpError is the gRPC error of a replica's HTTP answer other than 200.
// A client's fault (400, 404, 413, ...) keeps the replica's message; a
// replica that cannot take the call now (503, 502, 429) is Unavailable,
// so that forward tries another replica; a replica refusing the gateway's
// token is the gateway's fault, not the client's.
func httpError(dep string, code int, body []byte) error {
	msg := answerMessage(body)
	var c codes.Code
	switch code {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		c = codes.InvalidArgument
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusRequestEntityTooLarge:
		c = codes.ResourceExhausted
	case http.StatusConflict:
		c = codes.FailedPrecondition
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		c = codes.DeadlineExceeded
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		c = codes.Unimplemented
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusTooManyRequests:
		return status.Errorf(codes.Unavailable, "a replica of %s answered HTTP %d: %s", dep, code, msg)
	case http.StatusUnauthorized, http.StatusForbidden:
		return status.Errorf(codes.Internal, "a replica of %s refused the gateway's credentials (HTTP %d): %s", dep, code, msg)
	default:
		if code >= 400 && code < 500 {
			c = codes.InvalidArgument
		} else {
			return status.Errorf(codes.Internal, "a replica of %s answered HTTP %d: %s", dep, code, msg)
		}
	}
	return status.Error(c, msg)
}

// answerMessage is the message of an error answer: KServe v2's
// {"error": "..."}, else the body's start.
func answerMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	const max = 512
	if len(body) > max {
		body = body[:max]
	}
	if len(body) == 0 {
		return "(no message)"
	}
	return string(body)
}
