package cli

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// replicaLogsPlatform serves a deployment of replicas and each replica
// job's log; it records the log requests.
type replicaLogsPlatform struct {
	gatewayv1.UnimplementedDeploymentServiceServer
	schedulerv1.UnimplementedSchedulerServiceServer
	d    *gatewayv1.Deployment
	logs map[string][]string
	mu   sync.Mutex
	reqs []*schedulerv1.GetJobLogsRequest
}

func (f *replicaLogsPlatform) start(t *testing.T) *globals {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	gatewayv1.RegisterDeploymentServiceServer(srv, f)
	schedulerv1.RegisterSchedulerServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &globals{dial: func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
}

func (f *replicaLogsPlatform) GetDeployment(_ context.Context, r *gatewayv1.GetDeploymentRequest) (*gatewayv1.GetDeploymentResponse, error) {
	if r.GetName() != f.d.GetName() {
		return nil, status.Errorf(codes.NotFound, "deployment %q not found", r.GetName())
	}
	return &gatewayv1.GetDeploymentResponse{Deployment: f.d}, nil
}

func (f *replicaLogsPlatform) GetJobLogs(r *schedulerv1.GetJobLogsRequest, s grpc.ServerStreamingServer[schedulerv1.GetJobLogsResponse]) error {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	lines := f.logs[r.GetId()]
	if n := int(r.GetTailLines()); n > 0 && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	return s.Send(&schedulerv1.GetJobLogsResponse{Lines: lines})
}

func newReplicaLogsPlatform() *replicaLogsPlatform {
	return &replicaLogsPlatform{
		d: &gatewayv1.Deployment{Name: "echo", Status: &gatewayv1.DeploymentStatus{Replicas: []*gatewayv1.Replica{{Id: "job-a"}, {Id: "job-b"}}}},
		logs: map[string][]string{
			"job-a": {"a started", "a ready"},
			"job-b": {"b started", "server exited with status 1; restart 1 in 1s", "b ready"},
		}}
}

// Several replicas: each line says its replica, one replica after the
// other in the deployment's order.
func TestDeployLogsPrefixesEachReplica(t *testing.T) {
	t.Parallel()
	f := newReplicaLogsPlatform()
	out, _, err := run(t, f.start(t), "deploy", "logs", "echo")
	require.NoError(t, err)
	require.Equal(t, "[job-a] a started\n[job-a] a ready\n[job-b] b started\n"+
		"[job-b] server exited with status 1; restart 1 in 1s\n[job-b] b ready\n", out)
}

// --replica picks the N-th replica or one by id, printed without a
// prefix; --tail and -f go to the log API.
func TestDeployLogsPicksOneReplica(t *testing.T) {
	t.Parallel()
	f := newReplicaLogsPlatform()
	g := f.start(t)
	out, _, err := run(t, g, "deploy", "logs", "echo", "--replica", "2", "--tail", "1")
	require.NoError(t, err)
	require.Equal(t, "b ready\n", out)
	out, _, err = run(t, g, "deploy", "logs", "echo", "--replica", "job-a", "-f")
	require.NoError(t, err)
	require.Equal(t, "a started\na ready\n", out)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.reqs, 2)
	require.Equal(t, "job-b", f.reqs[0].GetId())
	require.EqualValues(t, 1, f.reqs[0].GetTailLines())
	require.False(t, f.reqs[0].GetFollow())
	require.Equal(t, "job-a", f.reqs[1].GetId())
	require.True(t, f.reqs[1].GetFollow())
}

// Following several replicas prints every line of each, prefixed, as
// they come.
func TestDeployLogsFollowsEveryReplica(t *testing.T) {
	t.Parallel()
	f := newReplicaLogsPlatform()
	out, _, err := run(t, f.start(t), "deploy", "logs", "echo", "-f")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.ElementsMatch(t, []string{"[job-a] a started", "[job-a] a ready", "[job-b] b started",
		"[job-b] server exited with status 1; restart 1 in 1s", "[job-b] b ready"}, lines)
}

// A replica that --replica does not name, or a deployment without
// replicas, is an error that says what there is.
func TestDeployLogsErrors(t *testing.T) {
	t.Parallel()
	f := newReplicaLogsPlatform()
	g := f.start(t)
	_, _, err := run(t, g, "deploy", "logs", "echo", "--replica", "3")
	require.ErrorContains(t, err, "--replica 3: deployment echo has 2 replicas (1 to 2)")
	_, _, err = run(t, g, "deploy", "logs", "echo", "--replica", "job-z")
	require.ErrorContains(t, err, "its replicas: job-a, job-b")
	_, _, err = run(t, g, "deploy", "logs", "echo", "--tail", "-1")
	require.ErrorContains(t, err, "--tail must not be negative")

	empty := &replicaLogsPlatform{d: &gatewayv1.Deployment{Name: "idle"}}
	_, _, err = run(t, empty.start(t), "deploy", "logs", "idle")
	require.ErrorContains(t, err, "deployment idle has no replicas")
}
