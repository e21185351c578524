package mlp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Nets of the same depth but other widths share the prediction pool: each
// must get a workspace of its own widths.
func TestPredictAcrossWidths(t *testing.T) {
	t.Parallel()
	x := make([]float64, 3*4)
	for i := range x {
		x[i] = float64(i%5) - 2
	}
	for round := range 20 {
		for _, hidden := range []int{32, 128, 8, 64} {
			n, err := NewNet([]int{4, hidden, hidden, 3}, ReLU, Softmax)
			require.NoError(t, err)
			out := make([]float64, 3*n.NumOutputs())
			n.Predict(x, 3, out)
			for r := range 3 {
				sum := 0.0
				for _, p := range out[r*3 : (r+1)*3] {
					sum += p
				}
				require.InDelta(t, 1, sum, 1e-5, "round %d hidden %d", round, hidden)
			}
		}
	}
}
