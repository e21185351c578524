package evaluator

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func TestJudge(t *testing.T) {
	pol := &evaluatorv1.PromotionPolicy{TargetAlias: "production", PrimaryMetric: "test_accuracy",
		Direction: evaluatorv1.Direction_DIRECTION_MAXIMIZE, MinImprovement: 0.01, MinRelativeImprovement: 0.02,
		Guards: []*evaluatorv1.Guard{{Metric: "test_log_loss", Max: proto.Float64(0.5)}}}
	for name, tc := range map[string]struct {
		cand, inc map[string]float64
		incV      int64
		want      bool
		reason    string
	}{
		"no incumbent":     {map[string]float64{"test_accuracy": 0.8, "test_log_loss": 0.4}, nil, 0, true, "no version holds"},
		"better by margin": {map[string]float64{"test_accuracy": 0.95, "test_log_loss": 0.2}, map[string]float64{"test_accuracy": 0.9}, 1, true, "better"},
		"below relative":   {map[string]float64{"test_accuracy": 0.91, "test_log_loss": 0.2}, map[string]float64{"test_accuracy": 0.9}, 1, false, "not better enough"},
		"worse":            {map[string]float64{"test_accuracy": 0.8, "test_log_loss": 0.2}, map[string]float64{"test_accuracy": 0.9}, 1, false, "not better enough"},
		"guard fails":      {map[string]float64{"test_accuracy": 0.99, "test_log_loss": 0.9}, map[string]float64{"test_accuracy": 0.9}, 1, false, "above the maximum"},
		"metric missing":   {map[string]float64{"test_log_loss": 0.1}, nil, 0, false, "no metric"},
		"already holds it": {map[string]float64{"test_accuracy": 0.99, "test_log_loss": 0.1}, nil, 2, false, "already holds"},
	} {
		t.Run(name, func(t *testing.T) {
			d := &evaluatorv1.Decision{Version: 2, IncumbentVersion: tc.incV}
			require.Equal(t, tc.want, judge(d, pol, tc.cand, tc.inc), "%v", d.Reasons)
			require.Contains(t, d.Reasons[0], tc.reason)
		})
	}
}
