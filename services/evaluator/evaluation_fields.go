package evaluator

import (
	"strconv"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/services/evaluator/search"
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
	bothKinds(triggerKinds, &ev.TriggerKind, &ev.Trigger)
	bothKinds(splitKinds, &ev.SplitKind, &ev.Split)
	ev.ModelVersion, ev.Version = bothForms(ev.ModelVersion, ev.Version)
	ev.DatasetVersionNumber, ev.DatasetVersion = bothForms(ev.DatasetVersionNumber, ev.DatasetVersion)
	return ev
}

// keyOf returns the string whose enum is v, or def when none is.
// bothKinds fills an enum field and its deprecated string from whichever
// is set: the enum wins when it is set (its string follows it), else the
// string names the enum (an unknown string leaves it unspecified).
func bothKinds[E comparable](m map[string]E, kind *E, name *string) {
	var unspecified E
	if *kind != unspecified {
		*name = keyOf(m, *kind, *name)
	} else {
		*kind = m[*name]
	}
}

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

// searcherKinds and directions are the enums of an experiment's searcher
// and mode strings, deprecated in the API and filled beside them.
var (
	searcherKinds = map[string]evaluatorv1.Searcher{
		search.Grid:      evaluatorv1.Searcher_SEARCHER_GRID,
		search.Random:    evaluatorv1.Searcher_SEARCHER_RANDOM,
		search.TPE:       evaluatorv1.Searcher_SEARCHER_TPE,
		search.ASHA:      evaluatorv1.Searcher_SEARCHER_ASHA,
		search.Hyperband: evaluatorv1.Searcher_SEARCHER_HYPERBAND,
	}
	directions = map[string]evaluatorv1.Direction{
		"max": evaluatorv1.Direction_DIRECTION_MAXIMIZE,
		"min": evaluatorv1.Direction_DIRECTION_MINIMIZE,
	}
)

// experimentStrings sets an experiment's searcher and mode strings from
// its enums when a create request sets them (the enum wins); the strings
// are then checked as before.
func experimentStrings(x *evaluatorv1.Experiment) error {
	if k := x.SearcherKind; k != evaluatorv1.Searcher_SEARCHER_UNSPECIFIED {
		if x.Searcher = keyOf(searcherKinds, k, ""); x.Searcher == "" {
			return apierr.Invalid("experiment.searcher_kind", "unknown searcher %d", k)
		}
	}
	if d := x.Direction; d != evaluatorv1.Direction_DIRECTION_UNSPECIFIED {
		if x.Mode = keyOf(directions, d, ""); x.Mode == "" {
			return apierr.Invalid("experiment.direction", "unknown direction %d", d)
		}
	}
	return nil
}

// fillExperiment gives an experiment its searcher and direction enums
// from the strings (experiments stored before the enums get them when
// read), and the strings from the enums.
func fillExperiment(x *evaluatorv1.Experiment) *evaluatorv1.Experiment {
	if x == nil {
		return nil
	}
	bothKinds(searcherKinds, &x.SearcherKind, &x.Searcher)
	bothKinds(directions, &x.Direction, &x.Mode)
	x.Project = projectOfExperiment(x)
	return x
}
