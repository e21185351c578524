//go:build integration

package tests

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/app"
)

// TestRateLimitPerIdentity: with --auth.rate-limit each identity has its
// own bucket. Alice's calls beyond the burst are ResourceExhausted over
// gRPC and 429 with Retry-After over HTTP, naming the limit; Bob's go
// on; the mesh (the harness's own connection) is not limited.
func TestRateLimitPerIdentity(t *testing.T) {
	t.Parallel()
	// One call every 5 s, 3 at once: no call of this test waits for a
	// refill, however slow the machine.
	c, admin := authCluster(t, func(cfg *app.Config) { cfg.RateLimit, cfg.RateBurst = 0.2, 3 })
	ctx := t.Context()
	adminIAM := iamv1.NewIAMServiceClient(dialAs(t, c.Addrs.GRPC, admin))
	aliceTok := mustToken(t, adminIAM, "alice", &iamv1.Binding{Project: "default", Role: "viewer"})
	bobTok := mustToken(t, adminIAM, "bob", &iamv1.Binding{Project: "default", Role: "viewer"})
	carolTok := mustToken(t, adminIAM, "carol", &iamv1.Binding{Project: "default", Role: "viewer"})

	alice := registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, aliceTok))
	for i := range 3 {
		_, err := alice.ListModels(ctx, &registryv1.ListModelsRequest{})
		require.NoError(t, err, "call %d of the burst", i+1)
	}
	_, err := alice.ListModels(ctx, &registryv1.ListModelsRequest{})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "rate limit: alice may make 0.2 calls a second, 3 at once; retry in")

	// Over HTTP a call is counted once, at the edge, though the edge
	// calls on over gRPC for the caller: Carol's three all answer.
	get := func(token string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP+"/v1/models", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.HTTPClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp
	}
	for i := range 3 {
		require.Equal(t, http.StatusOK, get(carolTok).StatusCode, "carol's call %d", i+1)
	}
	resp := get(carolTok)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After: %q", resp.Header.Get("Retry-After"))
	require.Positive(t, secs)

	_, err = registryv1.NewRegistryServiceClient(dialAs(t, c.Addrs.GRPC, bobTok)).ListModels(ctx, &registryv1.ListModelsRequest{})
	require.NoError(t, err, "bob has a bucket of his own")
	for range 10 {
		_, err = c.Registry.ListModels(ctx, &registryv1.ListModelsRequest{})
		require.NoError(t, err, "the mesh is not limited")
	}
}
