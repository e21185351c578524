package serving

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/tests/harness"
)

// BenchmarkPayloadLogging measures gRPC inference through the gateway to
// one native replica (iris, one row) at 32 in flight, with the
// deployment's payload logging off, then at 100% sampling of requests and
// responses to BMAAS_PAYLOADS, side by side in one run: the whole platform
// in one process, the evaluator's monitor decoding every record on the
// same cores.
//
//	go test -run '^$' -bench PayloadLogging -benchtime 1x ./bench/serving/
func BenchmarkPayloadLogging(b *testing.B) { payloadLogging(b, app.AllTargets) }

// BenchmarkPayloadLoggingGateway is the same with no evaluator in the
// process: the gateway's own cost (the copies, the batches, the
// JetStream store of the embedded NATS), as in a cluster where the
// evaluator's monitor runs on another machine.
func BenchmarkPayloadLoggingGateway(b *testing.B) {
	payloadLogging(b, []string{app.TargetRegistry, app.TargetScheduler, app.TargetTrainerAgent, app.TargetGateway})
}

func payloadLogging(b *testing.B, targets []string) {
	c := harness.Start(b, func(cfg *app.Config) {
		cfg.Gateway.ReconcileInterval = 100 * time.Millisecond
		cfg.Targets = targets
	}, replicaMode, roomy)
	upload(b, c, "iris", "iris.csv")
	train(b, c, "iris", "logistic", nil)
	deploy(b, c, "iris", "iris@1", 0, 0)
	gw := inference.NewGRPCInferenceServiceClient(c.Conn)
	req := infer("iris", 4)
	call := func() error { _, err := gw.ModelInfer(context.Background(), req); return err }
	dc := gatewayv1.NewDeploymentServiceClient(c.Conn)
	set := func(pl *gatewayv1.PayloadLogging) {
		if _, err := dc.UpdateDeployment(context.Background(), &gatewayv1.UpdateDeploymentRequest{
			Deployment: &gatewayv1.Deployment{Name: "iris", PayloadLogging: pl},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"payload_logging"}}}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second) // the gateway's deployment cache follows etcd
	}
	// Off and on alternate three times, so that the machine's drift over
	// the run falls on both alike: compare each "all" with the "off"
	// runs around it.
	for round := 1; round <= 3; round++ {
		b.Run(fmt.Sprintf("off-%d-c32", round), func(b *testing.B) { load(32, window, call).report(b) })
		set(&gatewayv1.PayloadLogging{SampleRate: 1})
		logged0 := promValue(b, c.HTTP, "bmaas_gateway_payloads_logged_total")
		b.Run(fmt.Sprintf("all-%d-c32", round), func(b *testing.B) {
			r := load(32, window, call)
			r.report(b)
			b.ReportMetric(promValue(b, c.HTTP, "bmaas_gateway_payloads_logged_total")-logged0, "logged")
			b.ReportMetric(promValue(b, c.HTTP, "bmaas_gateway_payloads_dropped_total"), "dropped")
		})
		set(nil)
	}
	b.Run("off-4-c32", func(b *testing.B) { load(32, window, call).report(b) })
}
