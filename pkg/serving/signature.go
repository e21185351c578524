package serving

import commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"

// ClassesOf reads from a model version's signature what its one output
// means, for Options: the class labels and whether the values are logits,
// when the signature gives both labels and their kind (logits or
// probabilities); nil otherwise, and the output is served as it is.
func ClassesOf(sig *commonv1.Signature) (classes []string, logits bool) {
	outs := sig.GetOutputs()
	if len(outs) != 1 || len(outs[0].GetLabels()) == 0 {
		return nil, false
	}
	switch outs[0].GetKind() {
	case commonv1.OutputKind_OUTPUT_KIND_LOGITS:
		return outs[0].GetLabels(), true
	case commonv1.OutputKind_OUTPUT_KIND_PROBABILITIES:
		return outs[0].GetLabels(), false
	}
	return nil, false
}
