package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestValidateNamesTheField(t *testing.T) {
	good := &evaluatorv1.AlertRule{Name: "drift", Deployment: "iris", Series: "drift_score", Column: "a",
		Comparison: evaluatorv1.Comparison_COMPARISON_GREATER, Threshold: 0.3, For: durationpb.New(time.Minute),
		Labels: map[string]string{"team": "ml"}, Action: &evaluatorv1.AlertAction{Kind: "retrain"}}
	require.NoError(t, validate(good))
	require.NoError(t, validate(&evaluatorv1.AlertRule{Name: "jobs", Series: "job_failures",
		Comparison: evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL, Threshold: 1}), "a platform series takes no deployment")
	for field, bad := range map[string]func(r *evaluatorv1.AlertRule){
		"rule.name":                  func(r *evaluatorv1.AlertRule) { r.Name = "Drift!" },
		"rule.deployment":            func(r *evaluatorv1.AlertRule) { r.Deployment = "" },
		"rule.deployment ":           func(r *evaluatorv1.AlertRule) { r.Series, r.Column, r.Action = "job_failures", "", nil },
		"rule.action":                func(r *evaluatorv1.AlertRule) { r.Series, r.Column, r.Deployment = "gpu_idle", "", "" },
		"rule.series":                func(r *evaluatorv1.AlertRule) { r.Series = "drfit" },
		"rule.column":                func(r *evaluatorv1.AlertRule) { r.Series = "error_rate" },
		"rule.comparison":            func(r *evaluatorv1.AlertRule) { r.Comparison = 0 },
		"rule.for":                   func(r *evaluatorv1.AlertRule) { r.For = durationpb.New(-time.Second) },
		"rule.labels":                func(r *evaluatorv1.AlertRule) { r.Labels = map[string]string{"bad-name": "x"} },
		"rule.action.kind":           func(r *evaluatorv1.AlertRule) { r.Action.Kind = "page" },
		"rule.action.cool_down":      func(r *evaluatorv1.AlertRule) { r.Action.CoolDown = durationpb.New(-time.Second) },
		"rule.action.payload_window": func(r *evaluatorv1.AlertRule) { r.Action.PayloadWindow = durationpb.New(-time.Hour) },
	} {
		r := proto.Clone(good).(*evaluatorv1.AlertRule)
		bad(r)
		var fe *apierr.FieldError
		require.ErrorAs(t, validate(r), &fe, field)
		require.Equal(t, strings.TrimSpace(field), fe.Field)
	}
}

func TestSeriesRead(t *testing.T) {
	w := &evaluatorv1.MonitorWindow{Requests: 10, Rows: 50, ErrorRate: 0.1, DriftShare: 0.5,
		Drift:       []*evaluatorv1.ColumnDrift{{Column: "a", Score: 0.2}, {Column: "b", Score: 0.9, Drifted: true}},
		Performance: &evaluatorv1.LivePerformance{LabelledRows: 5, Accuracy: 0.8}}
	for _, tc := range []struct {
		series, column string
		want           float64
		ok             bool
	}{{"drift_score", "", 0.9, true}, {"drift_score", "a", 0.2, true}, {"drift_score", "z", 0, false},
		{"drifted_columns", "", 1, true}, {"drift_share", "", 0.5, true}, {"accuracy", "", 0.8, true},
		{"rmse", "", 0, true}, {"error_rate", "", 0.1, true}, {"prediction_drift", "", 0, false}} {
		v, ok := seriesTable[tc.series].value(w, tc.column)
		require.Equal(t, tc.ok, ok, "%s{%s}", tc.series, tc.column)
		require.Equal(t, tc.want, v, "%s{%s}", tc.series, tc.column)
	}
	_, ok := seriesTable["accuracy"].value(&evaluatorv1.MonitorWindow{}, "")
	require.False(t, ok, "no feedback: no accuracy")
	require.True(t, holds(evaluatorv1.Comparison_COMPARISON_LESS, 0.1, 0.2))
	require.False(t, holds(evaluatorv1.Comparison_COMPARISON_GREATER_OR_EQUAL, 0.1, 0.2))
	require.Equal(t, `drift_score{column="a"} > 0.3`, Condition(&evaluatorv1.AlertRule{Series: "drift_score", Column: "a",
		Comparison: evaluatorv1.Comparison_COMPARISON_GREATER, Threshold: 0.3}))
}
