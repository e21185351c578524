package train

import (
	"maps"
	"strings"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// RuntimeSpec is the spec a builtin training job runs: its algorithm,
// target, hyperparameters, split fractions and seed. Preprocessing
// entries (k=v) add parameters the hyperparameters do not set. The agent
// trains this spec and the evaluator cuts the job's test rows with it
// (SplitOf), so both read a job the same way.
func RuntimeSpec(rt *schedulerv1.BuiltinRuntime) Spec {
	params := maps.Clone(rt.GetHyperparameters())
	if params == nil {
		params = map[string]string{}
	}
	for _, p := range rt.GetPreprocessing() {
		if k, v, ok := strings.Cut(p, "="); ok {
			if _, set := params[strings.TrimSpace(k)]; !set {
				params[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return Spec{Algorithm: rt.GetAlgorithm(), Target: rt.GetTargetColumn(), Params: params,
		Validation: rt.GetValidationFraction(), Test: rt.GetTestFraction(), Seed: uint64(rt.GetSeed())}
}
