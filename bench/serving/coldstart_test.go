package serving

import (
	"context"
	"slices"
	"testing"
	"time"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// BenchmarkScaleFromZero measures a request that arrives while its
// deployment has no replica: the gateway holds it, the leader starts a
// replica (a scheduler job on an agent that downloads and loads the
// version), and the request is answered once the replica is ready. The
// gateway runs its default reconcile interval; only the autoscaler's
// windows are short, so that the deployment returns to zero quickly
// between the measured cold starts.
func BenchmarkScaleFromZero(b *testing.B) {
	c := harness.Start(b, replicaMode, func(cfg *app.Config) {
		cfg.Gateway.StableWindow = 2 * time.Second
		cfg.Gateway.PanicWindow = 500 * time.Millisecond
	})
	upload(b, c, "iris", "iris.csv")
	train(b, c, "iris", "logistic", nil)
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	ctx := context.Background()
	if _, err := dc.CreateDeployment(ctx, &gatewayv1.CreateDeploymentRequest{Deployment: &gatewayv1.Deployment{
		Name: "iris", Model: "iris@1", MinReplicas: 0, MaxReplicas: 1, TargetConcurrency: 1, Autoscaling: true,
		ScaleToZeroSeconds: 1}}); err != nil {
		b.Fatal(err)
	}
	gw := inference.NewGRPCInferenceServiceClient(c.Conn)
	req := infer("iris", 4)
	var lat []time.Duration
	for range 5 {
		poll(b, "scale to zero", func() bool {
			d, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: "iris"})
			return err == nil && d.Deployment.GetStatus().GetDesiredReplicas() == 0 && len(d.Deployment.GetStatus().GetReplicas()) == 0
		})
		t0 := time.Now()
		if _, err := gw.ModelInfer(ctx, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1e3, "max-ms")
	b.Logf("cold starts: %v", lat)
}
