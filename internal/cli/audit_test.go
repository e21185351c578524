package cli

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
)

// fakeAudit is an in-memory AuditService: it filters like the real one
// and answers pages of page_size records (2 when unset), the token being
// the index of the next record.
type fakeAudit struct {
	iamv1.UnimplementedAuditServiceServer
	mu      sync.Mutex
	records []*iamv1.AuditRecord
	reqs    []*iamv1.ListAuditRecordsRequest
}

func startAudit(t *testing.T) (*globals, *fakeAudit) {
	f := &fakeAudit{}
	g := serveInMemory(t, nil, func(s *grpc.Server) { iamv1.RegisterAuditServiceServer(s, f) })
	return g, f
}

func (f *fakeAudit) ListAuditRecords(_ context.Context, r *iamv1.ListAuditRecordsRequest) (*iamv1.ListAuditRecordsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(r).(*iamv1.ListAuditRecordsRequest))
	if r.GetProject() == "" {
		return nil, status.Error(codes.InvalidArgument, "project: required: only a cluster-admin reads the whole trail")
	}
	n := int(r.GetPageSize())
	if n == 0 {
		n = 2
	}
	i, _ := strconv.Atoi(r.GetPageToken())
	out := &iamv1.ListAuditRecordsResponse{}
	for ; i < len(f.records); i++ {
		rec := f.records[i]
		if rec.GetProject() != r.GetProject() || r.GetIdentity() != "" && rec.GetIdentity() != r.GetIdentity() ||
			r.GetDenied() && rec.GetCode() == "OK" || r.GetSince() != nil && rec.GetTime().AsTime().Before(r.GetSince().AsTime()) {
			continue
		}
		if len(out.Records) == n {
			out.NextPageToken = strconv.Itoa(i)
			break
		}
		out.Records = append(out.Records, rec)
	}
	return out, nil
}

func (f *fakeAudit) requests() []*iamv1.ListAuditRecordsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func auditRecords() []*iamv1.AuditRecord {
	at := func(m int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 1, 2, 3, m, 0, 0, time.UTC))
	}
	return []*iamv1.AuditRecord{
		{Time: at(0), Identity: "alice", TokenId: "tok1", Address: "10.0.0.1:5000", Project: "vision",
			Method: "/bmaas.registry.v1.RegistryService/CreateModel", Resource: "iris", Code: "OK", Permission: "write models"},
		{Time: at(1), Identity: "bob", Address: "10.0.0.2:5000", Project: "vision",
			Method: "/bmaas.registry.v1.RegistryService/DeleteModel", Resource: "iris", Code: "PermissionDenied",
			Message: `bob may not write models in project "vision"`},
		{Time: at(2), Identity: "carol", Project: "nlp", Method: "/bmaas.iam.v1.IAMService/CreateToken", Code: "OK"},
		{Time: at(3), Identity: "alice", Address: "10.0.0.1:5001", Project: "vision",
			Method: "POST /v2/models/iris/infer", Resource: "iris", Code: "OK"},
		{Time: at(4), Identity: "ci", Address: "10.0.0.3:6000", Project: "vision",
			Method: "/bmaas.gateway.v1.GatewayService/CreateDeployment", Code: "InvalidArgument"},
	}
}

func TestAuditList(t *testing.T) {
	t.Parallel()
	g, f := startAudit(t)
	f.records = auditRecords()

	out, stderr, err := run(t, g, "audit", "list", "--project", "vision")
	require.NoError(t, err)
	require.Empty(t, stderr)
	require.Equal(t, ""+
		"TIME                   IDENTITY   METHOD             RESOURCE   CODE               ADDRESS\n"+
		"2026-01-02T03:00:00Z   alice      CreateModel        iris       OK                 10.0.0.1:5000\n"+
		"2026-01-02T03:01:00Z   bob        DeleteModel        iris       PermissionDenied   10.0.0.2:5000\n"+
		"2026-01-02T03:03:00Z   alice      infer              iris       OK                 10.0.0.1:5001\n"+
		"2026-01-02T03:04:00Z   ci         CreateDeployment   -          InvalidArgument    10.0.0.3:6000\n", out)
	reqs := f.requests()
	require.Len(t, reqs, 2, "two pages")
	require.Equal(t, "vision", reqs[0].GetProject())
	require.Nil(t, reqs[0].GetSince(), "the server's default: the last day")
	require.Zero(t, reqs[0].GetPageSize())
	require.Empty(t, reqs[0].GetPageToken())
	require.Equal(t, "3", reqs[1].GetPageToken())

	out, _, err = run(t, g, "-o", "json", "audit", "list", "--project", "vision", "--denied", "--identity", "bob")
	require.NoError(t, err)
	last := f.requests()[len(f.requests())-1]
	require.True(t, last.GetDenied())
	require.Equal(t, "bob", last.GetIdentity())
	var doc struct {
		Records []struct {
			Identity, Method, Code, Message, Permission string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc.Records, 1)
	require.Equal(t, "/bmaas.registry.v1.RegistryService/DeleteModel", doc.Records[0].Method, "the full method in json")
	require.Equal(t, `bob may not write models in project "vision"`, doc.Records[0].Message)

	out, _, err = run(t, g, "-o", "yaml", "audit", "list", "--project", "nlp")
	require.NoError(t, err)
	require.Contains(t, out, "records:\n  - time: \"2026-01-02T03:02:00Z\"\n    identity: carol\n")

	// --since: a duration back from now, or a time.
	before := time.Now()
	_, _, err = run(t, g, "audit", "list", "--project", "vision", "--since", "90m")
	require.NoError(t, err)
	since := f.requests()[len(f.requests())-1].GetSince().AsTime()
	require.WithinRange(t, since, before.Add(-90*time.Minute-time.Second), time.Now().Add(-90*time.Minute))
	out, _, err = run(t, g, "-o", "id", "audit", "list", "--project", "vision", "--since", "2026-01-02T03:03:00Z")
	require.NoError(t, err)
	require.Empty(t, out, "audit records have no id")
	require.Equal(t, time.Date(2026, 1, 2, 3, 3, 0, 0, time.UTC), f.requests()[len(f.requests())-1].GetSince().AsTime())
	out, _, err = run(t, g, "audit", "list", "--project", "vision", "--since", "2026-01-02T03:03:00Z")
	require.NoError(t, err)
	require.Len(t, splitLines(out), 3)

	// --limit: the first N records; the table says more follow.
	n := len(f.requests())
	out, stderr, err = run(t, g, "audit", "list", "--project", "vision", "--limit", "3")
	require.NoError(t, err)
	require.Len(t, splitLines(out), 4, out)
	require.Contains(t, out, "bob")
	require.NotContains(t, out, "CreateDeployment")
	require.Equal(t, "more records follow: raise --limit, or give a later --since\n", stderr)
	require.Equal(t, int32(3), f.requests()[n].GetPageSize())
	require.Len(t, f.requests(), n+1, "one page of 3")
	out, stderr, err = run(t, g, "-o", "json", "audit", "list", "--project", "vision", "--limit", "1")
	require.NoError(t, err)
	require.Empty(t, stderr, "structured output says nothing more")
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc.Records, 1)
	_, stderr, err = run(t, g, "audit", "list", "--project", "vision", "--limit", "4")
	require.NoError(t, err)
	require.Empty(t, stderr, "no record beyond the 4th")
}

func TestAuditListErrors(t *testing.T) {
	t.Parallel()
	g, f := startAudit(t)
	_, _, err := run(t, g, "audit", "list")
	require.EqualError(t, err, "InvalidArgument: --project: required: only a cluster-admin reads the whole trail")
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	calls := len(f.requests())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, "--since yesterday: want a duration back from now (30m, 24h) or an RFC 3339 time"},
		{[]string{"--since", "-1h"}, "--since -1h: a duration back from now must not be negative"},
		{[]string{"--since", "2026-01-02"}, "--since 2026-01-02: want a duration back from now"},
		{[]string{"--limit", "-1"}, "--limit must not be negative, got -1 (0: every record)"},
		{[]string{"--limit", "many"}, `invalid argument "many" for "--limit"`},
		{[]string{"vision"}, "expected no arguments (got 1 argument)"},
	} {
		_, _, err := run(t, g, append([]string{"audit", "list", "--project", "vision"}, tc.args...)...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
	require.Len(t, f.requests(), calls, "refused before any call")

	for field, flag := range map[string]string{"identity": "--identity", "since": "--since", "page_size": "--limit"} {
		err := auditFields.rename(status.Error(codes.InvalidArgument, field+": bad"), nil)
		require.EqualError(t, err, "InvalidArgument: "+flag+": bad")
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ts, err := parseSince("", now)
	require.NoError(t, err)
	require.Nil(t, ts)
	for in, want := range map[string]time.Time{
		"1h":                        now.Add(-time.Hour),
		"0s":                        now,
		"1h30m":                     now.Add(-90 * time.Minute),
		"2026-01-02T15:04:05Z":      time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		"2026-01-02T15:04:05+02:00": time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC),
	} {
		ts, err := parseSince(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(ts.AsTime()), "%s: %s", in, ts.AsTime())
	}
	for _, bad := range []string{"-1m", "7d", "now", "2026-01-02 15:04:05"} {
		_, err := parseSince(bad, now)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "--since "+bad+": ", bad)
	}
}

func TestShortMethod(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/bmaas.registry.v1.RegistryService/CreateModel": "CreateModel",
		"POST /v2/models/iris/infer":                     "infer",
		"GET /metrics/":                                  "metrics",
		"CreateModel":                                    "CreateModel",
		"":                                               "-",
	} {
		require.Equal(t, want, shortMethod(in), in)
	}
}

// splitLines is a table's lines.
func splitLines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
