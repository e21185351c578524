package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// deployLogsCommand is `bmaas deploy logs NAME`: the logs of a
// deployment's replicas (their jobs' logs), each line prefixed with its
// replica when there are several.
func deployLogsCommand(g *globals) *cobra.Command {
	var follow bool
	var tail int32
	var replica string
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the logs of a deployment's replicas (with -f, keep printing new lines until interrupted)",
		Long: "Print the logs of a deployment's replicas: what their servers wrote and what the agent says about them\n" +
			"(starts, readiness, restarts). With several replicas each line starts with its replica's id.\n" +
			"--replica picks one: N for the N-th replica as `bmaas deploy get` lists them (from 1), or a replica id.",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if tail < 0 {
				return usageErrorf("--tail must not be negative")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				cctx, cancel := c.call(ctx)
				resp, err := c.deployments().GetDeployment(cctx, &gatewayv1.GetDeploymentRequest{Name: a[0]})
				cancel()
				if err != nil {
					return err
				}
				ids, err := pickReplicas(resp.GetDeployment(), replica)
				if err != nil {
					return err
				}
				ctx, cancel = c.transfer(ctx, cmd)
				defer cancel()
				err = replicaLogs(ctx, cmd.OutOrStdout(), c.scheduler(), ids, follow, tail)
				if follow && errors.Is(ctx.Err(), context.Canceled) {
					return nil // interrupted
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted (Ctrl-C)")
	cmd.Flags().Int32Var(&tail, "tail", 0, "start with the last N lines of each replica only (0: all)")
	cmd.Flags().StringVar(&replica, "replica", "", "one replica: N (the N-th, from 1) or a replica id")
	return cmd
}

// pickReplicas is the replicas whose logs to read: all of the
// deployment's, in the order it lists them, or the one --replica names.
func pickReplicas(d *gatewayv1.Deployment, replica string) ([]string, error) {
	var ids []string
	for _, r := range d.GetStatus().GetReplicas() {
		ids = append(ids, r.GetId())
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("deployment %s has no replicas", d.GetName())
	}
	if replica == "" {
		return ids, nil
	}
	for _, id := range ids {
		if id == replica {
			return []string{id}, nil
		}
	}
	if n, err := strconv.Atoi(replica); err == nil {
		if n < 1 || n > len(ids) {
			return nil, usageErrorf("--replica %d: deployment %s has %d replicas (1 to %d)", n, d.GetName(), len(ids), len(ids))
		}
		return []string{ids[n-1]}, nil
	}
	return nil, usageErrorf("--replica %q: no replica of deployment %s has that id (its replicas: %s)", replica, d.GetName(), strings.Join(ids, ", "))
}

// replicaLogs writes the logs of the replicas' jobs to w: one replica's
// as they come; several, each line prefixed with "[id] ", one replica
// after the other, or as they come when following.
func replicaLogs(ctx context.Context, w io.Writer, sc schedulerv1.SchedulerServiceClient, ids []string, follow bool, tail int32) error {
	read := func(ctx context.Context, id string, out func(string) error) error {
		stream, err := sc.GetJobLogs(ctx, &schedulerv1.GetJobLogsRequest{Id: id, Follow: follow, TailLines: tail})
		if err != nil {
			return fmt.Errorf("replica %s: %w", id, err)
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if status.Code(err) == codes.NotFound {
				return nil // the replica went since the deployment listed it
			}
			if err != nil {
				return fmt.Errorf("replica %s: %w", id, err)
			}
			for _, line := range msg.GetLines() {
				if err := out(strings.TrimSuffix(line, "\n")); err != nil {
					return err
				}
			}
		}
	}
	if len(ids) == 1 {
		return read(ctx, ids[0], func(l string) error { _, err := io.WriteString(w, l+"\n"); return err })
	}
	lw := &prefixedLines{w: w}
	if !follow {
		for _, id := range ids {
			if err := read(ctx, id, lw.writer(id)); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() { errs <- read(ctx, id, lw.writer(id)) }()
	}
	var first error
	for range ids {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// prefixedLines writes whole lines of several replicas to one writer,
// each prefixed with its replica; safe for concurrent use.
type prefixedLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixedLines) writer(id string) func(string) error {
	prefix := "[" + id + "] "
	return func(line string) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		_, err := io.WriteString(p.w, prefix+line+"\n")
		return err
	}
}
