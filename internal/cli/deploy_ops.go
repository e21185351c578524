package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

func deployGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a deployment: its spec, the version served, the replicas",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.deployments().GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: a[0]})
				if err != nil {
					return err
				}
				return printDeployment(g, cmd, resp.GetDeployment())
			})
		},
	}
}

// scaleFlags are the flags of `bmaas deploy scale`.
type scaleFlags struct {
	min, max            int32
	autoscaling, noAuto bool
	scaleToZero         time.Duration
}

// apply changes the replica bounds of d to the flags given; it fails when
// none was given or the result is inconsistent. --min 0 lets d scale to
// zero (after its idle time, the gateway's default unless
// --scale-to-zero names one); --min above 0 never does.
func (s *scaleFlags) apply(d *gatewayv1.Deployment, changed func(string) bool) error {
	if !changed("min") && !changed("max") && !changed("autoscaling") && !changed("no-autoscaling") && !changed("scale-to-zero") {
		return usageErrorf("give --min, --max, --scale-to-zero, --autoscaling or --no-autoscaling")
	}
	if s.autoscaling && s.noAuto {
		return usageErrorf("--autoscaling and --no-autoscaling exclude each other")
	}
	if changed("min") {
		d.MinReplicas = s.min
	}
	if changed("max") {
		d.MaxReplicas = s.max
	} else if d.MaxReplicas < d.MinReplicas {
		d.MaxReplicas = d.MinReplicas
	}
	if changed("min") && !changed("max") && !d.Autoscaling {
		d.MaxReplicas = d.MinReplicas
	}
	switch {
	case d.MinReplicas < 0 || d.MaxReplicas < 0:
		return usageErrorf("--min and --max must not be negative")
	case d.MaxReplicas < d.MinReplicas:
		return usageErrorf("--max (%d) must be at least --min (%d)", d.MaxReplicas, d.MinReplicas)
	}
	switch {
	case changed("scale-to-zero") && s.scaleToZero < 0:
		return usageErrorf("--scale-to-zero must not be negative")
	case changed("scale-to-zero") && d.MinReplicas != 0:
		return usageErrorf("--scale-to-zero needs --min 0 (the deployment's min is %d)", d.MinReplicas)
	case changed("scale-to-zero"):
		d.ScaleToZeroSeconds = int64(s.scaleToZero.Round(time.Second) / time.Second)
	case d.MinReplicas > 0:
		d.ScaleToZeroSeconds = 0
	}
	if s.autoscaling {
		d.Autoscaling = true
	}
	if s.noAuto {
		d.Autoscaling = false
	}
	return nil
}

func deployScaleCommand(g *globals) *cobra.Command {
	var s scaleFlags
	cmd := &cobra.Command{
		Use:   "scale NAME [--min N] [--max N] [--scale-to-zero IDLE] [--autoscaling | --no-autoscaling]",
		Short: "Change a deployment's replica bounds",
		Long: "Change a deployment's replica bounds. With --min 0 the deployment scales to zero once no\n" +
			"request came for its idle time (--scale-to-zero, default 60s, the gateway's\n" +
			"--gateway.scale-to-zero-after), and the next request starts a replica again.",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				got, err := c.deployments().GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: a[0]})
				if err != nil {
					return err
				}
				d := proto.Clone(got.GetDeployment()).(*gatewayv1.Deployment)
				if err := s.apply(d, cmd.Flags().Changed); err != nil {
					return err
				}
				resp, err := updateDeployment(ctx, c, d, scaleMask, func(d *gatewayv1.Deployment) error { return s.apply(d, cmd.Flags().Changed) })
				if err != nil {
					return err
				}
				return printDeployment(g, cmd, resp)
			})
		},
	}
	cmd.Flags().Int32Var(&s.min, "min", 0, "minimum replicas (0: scale to zero when idle)")
	cmd.Flags().DurationVar(&s.scaleToZero, "scale-to-zero", 0, "idle time after which a --min 0 deployment scales to zero (default: the gateway's, 60s)")
	cmd.Flags().Int32Var(&s.max, "max", 0, "maximum replicas")
	cmd.Flags().BoolVar(&s.autoscaling, "autoscaling", false, "let the autoscaler move between --min and --max")
	cmd.Flags().BoolVar(&s.noAuto, "no-autoscaling", false, "keep --min replicas whatever the load")
	return cmd
}

func deployRollbackCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback NAME",
		Short: "Pin a deployment to the version it served before its last rollout",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.deployments().RollbackDeployment(ctx, &gatewayv1.RollbackDeploymentRequest{Name: a[0]})
				if err != nil {
					return err
				}
				return printDeployment(g, cmd, resp.GetDeployment())
			})
		},
	}
}

func deployDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a deployment; its replicas stop",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.deployments().DeleteDeployment(ctx, &gatewayv1.DeleteDeploymentRequest{Name: a[0]}); err != nil {
					return err
				}
				return done(g, cmd, "deployment %s deleted", a[0])
			})
		},
	}
}

// scaleMask names the fields deploy scale changes.
var scaleMask = []string{"min_replicas", "max_replicas", "autoscaling", "scale_to_zero_seconds"}

// updateDeployment writes the fields of an edited deployment that mask
// names. When the gateway changed it since it was read (Aborted: its
// status moves on its own, right after a create say), the deployment is
// read again, edit applied again, and the write retried.
func updateDeployment(ctx context.Context, c *client, d *gatewayv1.Deployment, mask []string, edit func(*gatewayv1.Deployment) error) (*gatewayv1.Deployment, error) {
	for attempt := 1; ; attempt++ {
		d.Status, d.State = nil, ""
		resp, err := c.deployments().UpdateDeployment(ctx, &gatewayv1.UpdateDeploymentRequest{
			Deployment: d, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}})
		if status.Code(err) != codes.Aborted || attempt == 5 {
			return resp.GetDeployment(), err
		}
		got, err := c.deployments().GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: d.GetName()})
		if err != nil {
			return nil, err
		}
		d = proto.Clone(got.GetDeployment()).(*gatewayv1.Deployment)
		if err := edit(d); err != nil {
			return nil, err
		}
	}
}
