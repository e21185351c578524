package artifact_test

import (
	"testing"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
)

// FuzzUnmarshal: loading arbitrary bytes never panics, and a model that
// loads can predict a row of zeros without panicking.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte("BMAASML\x00"))
	f.Add([]byte("BMAASML\x00\x08\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := artifact.Unmarshal(b)
		if err != nil {
			return
		}
		p := m.NewPredictor()
		x := make([]float64, len(m.Inputs()))
		out := make([]float64, m.NumOutputs())
		_ = p.PredictMatrix(x, 1, out)
	})
}
