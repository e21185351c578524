package traineragent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
)

// signatureFile, in BMAAS_OUTPUT_DIR, says what the model a process job
// leaves takes and answers: a bmaas.common.v1.Signature in JSON, e.g.
//
//	{"inputs": [{"name": "input", "columns": ["sepal_length_cm", ...]}],
//	 "outputs": [{"name": "output", "labels": ["0", "1", "2"], "kind": "OUTPUT_KIND_LOGITS"}]}
//
// It becomes the version's signature (so a deployment of an ONNX
// classifier answers class labels and probabilities) and is no part of
// the artifact.
const signatureFile = "signature.json"

// readSignature reads dir's signature file; nil when there is none.
func readSignature(dir string) (*commonv1.Signature, error) {
	b, err := os.ReadFile(filepath.Join(dir, signatureFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("BMAAS_OUTPUT_DIR/%s: %w", signatureFile, err)
	}
	sig := &commonv1.Signature{}
	if err := protojson.Unmarshal(b, sig); err != nil {
		return nil, fmt.Errorf("BMAAS_OUTPUT_DIR/%s is not a signature (bmaas.common.v1.Signature in JSON): %w", signatureFile, err)
	}
	return sig, nil
}

// withoutSignature drops the signature file from a list of outputs.
func withoutSignature(files []string) []string {
	out := files[:0:0]
	for _, f := range files {
		if f != signatureFile {
			out = append(out, f)
		}
	}
	return out
}
