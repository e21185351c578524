package evaluator

import (
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
)

func cloneExperiment(x *evaluatorv1.Experiment) *evaluatorv1.Experiment {
	return proto.Clone(x).(*evaluatorv1.Experiment)
}
