package evaluator

import (
	"testing"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestFillEvaluationGivesBothForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   *evaluatorv1.Evaluation
		want *evaluatorv1.Evaluation
	}{
		{name: "strings only (stored before the enums)",
			in: &evaluatorv1.Evaluation{Trigger: "auto", Split: "test", Version: "3", DatasetVersion: "2"},
			want: &evaluatorv1.Evaluation{Trigger: "auto", Split: "test", Version: "3", DatasetVersion: "2",
				TriggerKind: evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_AUTO, SplitKind: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST,
				ModelVersion: 3, DatasetVersionNumber: 2}},
		{name: "enums and numbers only",
			in: &evaluatorv1.Evaluation{TriggerKind: evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_EXPERIMENT,
				SplitKind: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_ALL, ModelVersion: 7, DatasetVersionNumber: 1},
			want: &evaluatorv1.Evaluation{Trigger: "experiment", Split: "all", Version: "7", DatasetVersion: "1",
				TriggerKind: evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_EXPERIMENT, SplitKind: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_ALL,
				ModelVersion: 7, DatasetVersionNumber: 1}},
		{name: "the enum and the number win over a disagreeing string",
			in: &evaluatorv1.Evaluation{Trigger: "manual", TriggerKind: evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_AUTO,
				Split: "all", SplitKind: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST, Version: "1", ModelVersion: 2},
			want: &evaluatorv1.Evaluation{Trigger: "auto", Split: "test", Version: "2",
				TriggerKind: evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_AUTO, SplitKind: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST,
				ModelVersion: 2}},
		{name: "an unknown string keeps its string and no enum",
			in:   &evaluatorv1.Evaluation{Trigger: "cron", Version: "prod"},
			want: &evaluatorv1.Evaluation{Trigger: "cron", Version: "prod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fillEvaluation(tc.in)
			require.Equal(t, tc.want.Trigger, got.Trigger)
			require.Equal(t, tc.want.TriggerKind, got.TriggerKind)
			require.Equal(t, tc.want.Split, got.Split)
			require.Equal(t, tc.want.SplitKind, got.SplitKind)
			require.Equal(t, tc.want.Version, got.Version)
			require.Equal(t, tc.want.ModelVersion, got.ModelVersion)
			require.Equal(t, tc.want.DatasetVersion, got.DatasetVersion)
			require.Equal(t, tc.want.DatasetVersionNumber, got.DatasetVersionNumber)
		})
	}
}

func TestCreateRequestVersionRefs(t *testing.T) {
	t.Parallel()
	require.Equal(t, "latest", versionRef(0, ""))
	require.Equal(t, "prod", versionRef(0, "prod"), "the string still takes an alias")
	require.Equal(t, "4", versionRef(4, "prod"), "the number wins")
	require.Equal(t, "", datasetRef(&evaluatorv1.Evaluation{}), "empty: the latest")
	require.Equal(t, "2", datasetRef(&evaluatorv1.Evaluation{DatasetVersion: "2"}), "the deprecated string still works")
	require.Equal(t, "5", datasetRef(&evaluatorv1.Evaluation{DatasetVersion: "2", DatasetVersionNumber: 5}))
}

func TestExperimentSearcherAndDirection(t *testing.T) {
	t.Parallel()
	// The enum wins over a disagreeing string on create.
	x := &evaluatorv1.Experiment{Searcher: "grid", SearcherKind: evaluatorv1.Searcher_SEARCHER_ASHA,
		Mode: "max", Direction: evaluatorv1.Direction_DIRECTION_MINIMIZE}
	require.NoError(t, experimentStrings(x))
	require.Equal(t, "asha", x.Searcher)
	require.Equal(t, "min", x.Mode)
	// The strings alone still work, and get their enums.
	x = &evaluatorv1.Experiment{Searcher: "tpe", Mode: "max"}
	require.NoError(t, experimentStrings(x))
	fillExperiment(x)
	require.Equal(t, evaluatorv1.Searcher_SEARCHER_TPE, x.SearcherKind)
	require.Equal(t, evaluatorv1.Direction_DIRECTION_MAXIMIZE, x.Direction)
	// An enum value this server does not know names its field.
	err := experimentStrings(&evaluatorv1.Experiment{SearcherKind: evaluatorv1.Searcher(42)})
	var fe *apierr.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "experiment.searcher_kind", fe.Field)
	// Enums alone get their strings.
	x = fillExperiment(&evaluatorv1.Experiment{SearcherKind: evaluatorv1.Searcher_SEARCHER_HYPERBAND, Direction: evaluatorv1.Direction_DIRECTION_MINIMIZE})
	require.Equal(t, "hyperband", x.Searcher)
	require.Equal(t, "min", x.Mode)
}
