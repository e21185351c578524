package evaluator

import (
	"strconv"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

// The string forms of an evaluation's trigger and split, deprecated in the
// API for the enums and filled beside them for older clients.
var (
	triggerKinds = map[string]evaluatorv1.EvaluationTrigger{
		TriggerManual:     evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_MANUAL,
		TriggerAuto:       evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_AUTO,
		TriggerExperiment: evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_EXPERIMENT,
	}
	splitKinds = map[string]evaluatorv1.EvaluationSplit{
		splitAll:  evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_ALL,
		splitTest: evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_TEST,
	}
)

// Splits of an evaluation.
const (
	splitAll  = "all"
	splitTest = "test"
)

// fillEvaluation gives an evaluation both forms of the fields the API
// moved: the trigger and split as enums and strings (the enum wins when
// both are set and disagree), and the version numbers as int64 and as
// strings. Evaluations stored before the enums get them when read.
func fillEvaluation(ev *evaluatorv1.Evaluation) *evaluatorv1.Evaluation {
	if ev == nil {
		return nil
	}
	if ev.TriggerKind != evaluatorv1.EvaluationTrigger_EVALUATION_TRIGGER_UNSPECIFIED {
		ev.Trigger = keyOf(triggerKinds, ev.TriggerKind, ev.Trigger)
	} else {
		ev.TriggerKind = triggerKinds[ev.Trigger]
	}
	if ev.SplitKind != evaluatorv1.EvaluationSplit_EVALUATION_SPLIT_UNSPECIFIED {
		ev.Split = keyOf(splitKinds, ev.SplitKind, ev.Split)
	} else {
		ev.SplitKind = splitKinds[ev.Split]
	}
	ev.ModelVersion, ev.Version = bothForms(ev.ModelVersion, ev.Version)
	ev.DatasetVersionNumber, ev.DatasetVersion = bothForms(ev.DatasetVersionNumber, ev.DatasetVersion)
	return ev
}

// keyOf returns the string whose enum is v, or def when none is.
func keyOf[E comparable](m map[string]E, v E, def string) string {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	return def
}

// bothForms returns a version as a number and as a string, from whichever
// is set (the number when both are).
func bothForms(n int64, s string) (int64, string) {
	if n > 0 {
		return n, strconv.FormatInt(n, 10)
	}
	if x, err := strconv.ParseInt(s, 10, 64); err == nil && x > 0 {
		return x, s
	}
	return 0, s
}

// versionRef is the version reference a create request names: the int64
// field when set, else the string (a number, an alias or `latest`), else
// `latest`.
func versionRef(n int64, s string) string {
	if n > 0 {
		return strconv.FormatInt(n, 10)
	}
	if s == "" {
		return "latest"
	}
	return s
}
