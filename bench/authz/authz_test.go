// Package authz measures what authorization costs a call: the guard of
// pkg/iam (an API token looked up in the watched cache, its SHA-256
// checked, the permission table and the role decided) against a server
// that asks no token, in the same run.
package authz

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/grpcsrv"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/mesh"
	"github.com/bmaas/bmaas/pkg/store"
)

// models answers ListModels with nothing: the call's own work is none.
type models struct {
	registryv1.UnimplementedRegistryServiceServer
}

func (models) ListModels(context.Context, *registryv1.ListModelsRequest) (*registryv1.ListModelsResponse, error) {
	return &registryv1.ListModelsResponse{}, nil
}

// authority starts etcd, stores an editor's token and follows it.
func authority(b *testing.B) (*iam.Authority, string) {
	b.Helper()
	st := store.New(testenv.EtcdClient(b))
	id, secret, sum := iam.NewSecret()
	tok := &iamv1.StoredToken{SecretSha256: sum, Token: &iamv1.Token{Id: id, Identity: "alice",
		Kind: iamv1.IdentityKind_IDENTITY_KIND_USER, Bindings: []*iamv1.Binding{{Project: "default", Role: "editor"}}}}
	if _, err := st.Commit(b.Context(), nil, store.Put(iam.TokenKey(id), tok)); err != nil {
		b.Fatal(err)
	}
	a := iam.NewAuthority("mesh-token", st, nil, slog.New(slog.DiscardHandler))
	go func() { _ = a.Run(b.Context()) }()
	for {
		if _, err := a.Secret(secret); err == nil {
			return a, secret
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// server serves models through grpcsrv's chain, with guard (nil: auth off).
func server(b *testing.B, guard *iam.Guard) string {
	b.Helper()
	deps := grpcsrv.Deps{}
	if guard != nil {
		deps.Guard = guard // (a nil *Guard in the interface would be a guard)
	}
	s, err := grpcsrv.New(grpcsrv.Config{Addr: "127.0.0.1:0", MaxRecvMsgBytes: 1 << 20}, deps)
	if err != nil {
		b.Fatal(err)
	}
	registryv1.RegisterRegistryServiceServer(s.GRPC(), models{})
	go func() { _ = s.Serve() }()
	b.Cleanup(func() { s.Shutdown(context.Background()) })
	return s.Addr()
}

func client(b *testing.B, addr, token string) registryv1.RegistryServiceClient {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(mesh.Bearer(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return registryv1.NewRegistryServiceClient(conn)
}

// BenchmarkAuthorization: one unary call at a time over loopback, auth
// off, with the mesh's static token (the check before roles: a compare)
// and with an API token (looked up, hashed, its role decided),
// alternating rounds of b.N calls each; the p50 latency of each and what
// the API token adds to auth off.
func BenchmarkAuthorization(b *testing.B) {
	a, secret := authority(b)
	off := client(b, server(b, nil), "")
	guarded := server(b, iam.NewGuard(a, nil, nil))
	on := client(b, guarded, secret)
	static := client(b, guarded, "mesh-token")
	ctx := b.Context()
	p50 := func(c registryv1.RegistryServiceClient, n int) time.Duration {
		lat := make([]time.Duration, n)
		for i := range lat {
			start := time.Now()
			if _, err := c.ListModels(ctx, &registryv1.ListModelsRequest{}); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(start)
		}
		slices.Sort(lat)
		return lat[n/2]
	}
	p50(off, 2000) // warm both
	p50(on, 2000)
	b.ResetTimer()
	var sumOff, sumOn, sumStatic time.Duration
	const rounds = 3
	for range rounds {
		o := p50(off, b.N)
		s := p50(static, b.N)
		n := p50(on, b.N)
		sumOff += o
		sumOn += n
		sumStatic += s
		b.Logf("round: p50 off %s, mesh token %s, API token %s", o, s, n)
	}
	b.ReportMetric(float64(sumOff.Microseconds())/rounds, "p50-off-us")
	b.ReportMetric(float64(sumStatic.Microseconds())/rounds, "p50-mesh-us")
	b.ReportMetric(float64(sumOn.Microseconds())/rounds, "p50-token-us")
	b.ReportMetric(float64((sumOn-sumOff).Nanoseconds())/rounds/1000, "added-us")
}

// BenchmarkGuard is the guard's own work per call, without the network:
// authenticate an API token, find the call's project, qualify the names
// the request gives (a list gives none, GetModel one, a job's spec a
// model and a dataset), decide, and call the handler.
func BenchmarkGuard(b *testing.B) {
	a, secret := authority(b)
	g := iam.NewGuard(a, nil, nil)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+secret))
	h := func(context.Context, any) (any, error) { return nil, nil }
	for _, tc := range []struct {
		name, method string
		req          any
	}{
		{"list", "/bmaas.registry.v1.RegistryService/ListModels", &registryv1.ListModelsRequest{}},
		{"named", "/bmaas.registry.v1.RegistryService/GetModel", &registryv1.GetModelRequest{Name: "fraud"}},
		{"job", "/bmaas.scheduler.v1.SchedulerService/SubmitJob", &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{
			Model: "fraud", Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Algorithm: "logistic", Dataset: "cancer"}}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			info := &grpc.UnaryServerInfo{FullMethod: tc.method}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Unary(ctx, tc.req, info, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
