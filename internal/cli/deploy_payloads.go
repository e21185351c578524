package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// deployPayloadsCommand is `bmaas deploy payloads NAME`: the requests and
// responses the gateway logged for a deployment (deploy create
// --log-payloads), oldest first.
func deployPayloadsCommand(g *globals) *cobra.Command {
	var since time.Duration
	var limit int32
	cmd := &cobra.Command{
		Use:   "payloads NAME [--since 10m] [--limit N]",
		Short: "Print the requests and responses logged for a deployment (see deploy create --log-payloads)",
		Long: "Print what the gateway logged of a deployment's requests, oldest first: each with its request id\n" +
			"(the X-Request-Id its client got back), the version that answered, the protocol, the status, the\n" +
			"latency and the bodies (JSON as sent; -o json gives them base64-encoded, gRPC's as protobuf).",
		Example: "  bmaas deploy payloads bc --since 1h\n  bmaas -o json deploy payloads bc --limit 10",
		Args:    args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch {
			case since < 0:
				return usageErrorf("--since must not be negative")
			case limit < 0 || limit > 1000:
				return usageErrorf("--limit must be within 0 and 1000, got %d", limit)
			}
			req := &gatewayv1.ListPayloadsRequest{Deployment: a[0], PageSize: limit}
			if since > 0 {
				req.Since = timestamppb.New(time.Now().Add(-since))
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.deployments().ListPayloads(ctx, req)
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					t.row("TIME", "REQUEST ID", "VERSION", "PROTOCOL", "STATUS", "LATENCY", "REQUEST", "RESPONSE")
					for _, r := range resp.GetRecords() {
						t.row(formatTime(r.GetTime()), r.GetRequestId(), strconv.FormatInt(r.GetVersion(), 10), r.GetProtocol(),
							strconv.Itoa(int(r.GetStatus())), (time.Duration(r.GetLatencySeconds() * float64(time.Second))).Round(time.Microsecond).String(),
							bodyString(r.GetProtocol(), r.GetRequest()), bodyString(r.GetProtocol(), r.GetResponse()))
					}
				})
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only what was logged this long ago or later (default: all kept)")
	cmd.Flags().Int32Var(&limit, "limit", 100, "at most this many records")
	return cmd
}

// bodyString is a logged body for a table: JSON as text, cut at 60
// characters; protobuf as its size.
func bodyString(protocol string, b []byte) string {
	switch {
	case len(b) == 0:
		return "-"
	case protocol == "v2-grpc":
		return fmt.Sprintf("(%d bytes of protobuf)", len(b))
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
