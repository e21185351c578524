package cli

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
)

func auditCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit trail: every state-changing call and every refused one",
		Long: "Every process records each call that changes state, and each call it refuses, with who made it\n" +
			"(identity, token, address), what it needed and what it was about. A project's admins read its\n" +
			"trail (--project); a cluster-admin reads the whole of it.",
	}
	cmd.AddCommand(auditListCommand(g))
	return cmd
}

// auditFields name the flags for the fields of ListAuditRecords' errors.
var auditFields = fieldNames{"project": "--project", "identity": "--identity", "since": "--since", "page_size": "--limit"}

// parseSince reads --since: a duration back from now (1h, 30m) or an
// RFC 3339 time; "" leaves the server's default (the last day).
func parseSince(s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return nil, usageErrorf("--since %s: a duration back from now must not be negative", s)
		}
		return timestamppb.New(now.Add(-d)), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, usageErrorf("--since %s: want a duration back from now (30m, 24h) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
	}
	return timestamppb.New(t), nil
}

func auditListCommand(g *globals) *cobra.Command {
	var project, identity, since string
	var denied bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--project P] [--identity I] [--since 1h] [--denied] [--limit N]",
		Short: "List audit records, oldest first (the last day unless --since says otherwise)",
		Long: "List the audit trail from --since on, oldest first: a duration back from now (30m, 24h) or an\n" +
			"RFC 3339 time; the last day when not given. --limit N stops after the first N records.\n" +
			"METHOD is the gRPC method's name (or the HTTP route's last element), CODE the call's result.",
		Example: "  bmaas audit list --project vision --since 2h\n" +
			"  bmaas audit list --denied --identity ci --since 2026-01-02T00:00:00Z\n" +
			"  bmaas -o json audit list --project vision --limit 100",
		Args: args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageErrorf("--limit must not be negative, got %d (0: every record)", limit)
			}
			req := &iamv1.ListAuditRecordsRequest{Project: project, Identity: identity, Since: from, Denied: denied,
				PageSize: int32(min(limit, math.MaxInt32))}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				records, more, err := auditPages(ctx, c, req, limit)
				if err != nil {
					return auditFields.rename(err, nil)
				}
				resp := &iamv1.ListAuditRecordsResponse{Records: records}
				p := g.printer(cmd.OutOrStdout())
				if err := p.print(resp, func(t *table) {
					t.row("TIME", "IDENTITY", "METHOD", "RESOURCE", "CODE", "ADDRESS")
					for _, r := range records {
						t.row(formatTime(r.GetTime()), orDash(r.GetIdentity()), shortMethod(r.GetMethod()), orDash(r.GetResource()),
							orDash(r.GetCode()), orDash(r.GetAddress()))
					}
				}); err != nil {
					return err
				}
				if more && !p.structured() {
					_, err := fmt.Fprintf(cmd.ErrOrStderr(), "more records follow: raise --limit, or give a later --since\n")
					return err
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&project, "project", "", "only this project's records (required unless you are a cluster-admin)")
	fl.StringVar(&identity, "identity", "", "only the calls of this identity")
	fl.StringVar(&since, "since", "", "from this long ago (1h) or this RFC 3339 time on (default: the last day)")
	fl.BoolVar(&denied, "denied", false, "only the refused calls")
	fl.IntVar(&limit, "limit", 0, "at most this many records, the oldest first (0: every one)")
	return cmd
}

// auditPages follows ListAuditRecords' pages, each under its own call
// deadline, until the last page or limit records (0: no limit); more says
// whether records beyond the limit remain.
func auditPages(ctx context.Context, c *client, req *iamv1.ListAuditRecordsRequest, limit int) (records []*iamv1.AuditRecord, more bool, err error) {
	audit := iamv1.NewAuditServiceClient(c.conn)
	token := ""
	for {
		req.PageToken = token
		cctx, cancel := c.call(ctx)
		resp, err := audit.ListAuditRecords(cctx, req)
		cancel()
		if err != nil {
			return nil, false, err
		}
		records = append(records, resp.GetRecords()...)
		next := resp.GetNextPageToken()
		if limit > 0 && len(records) >= limit {
			return records[:limit], len(records) > limit || next != "", nil
		}
		if next == "" || next == token {
			return records, false, nil
		}
		token = next
	}
}

// shortMethod is a method's last path element: CreateModel for
// /bmaas.registry.v1.RegistryService/CreateModel.
func shortMethod(m string) string {
	m = strings.TrimRight(m, "/")
	if i := strings.LastIndex(m, "/"); i >= 0 && i+1 < len(m) {
		return m[i+1:]
	}
	return orDash(m)
}
