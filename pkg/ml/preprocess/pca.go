package preprocess

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// FitPCA fits a PCA on x (rows × cols) keeping k components, or, with
// k == 0, the fewest whose cumulative explained variance ratio exceeds
// variance. Component signs are fixed so that each component's largest
// absolute loading is positive.
func FitPCA(x []float64, rows, cols, k int, variance float64) (*PCA, error) {
	if rows < 2 {
		return nil, fmt.Errorf("%w: pca needs at least 2 rows", ErrSpec)
	}
	if k > cols || k > rows {
		return nil, fmt.Errorf("%w: pca components %d > min(rows %d, features %d)", ErrSpec, k, rows, cols)
	}
	mean := make([]float64, cols)
	for r := range rows {
		for j := range cols {
			mean[j] += x[r*cols+j]
		}
	}
	for j := range mean {
		mean[j] /= float64(rows)
	}
	cov := mat.NewSymDense(cols, nil)
	c := make([]float64, cols)
	for r := range rows {
		for j := range cols {
			c[j] = x[r*cols+j] - mean[j]
		}
		for a := range cols {
			for b := a; b < cols; b++ {
				cov.SetSym(a, b, cov.At(a, b)+c[a]*c[b])
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, fmt.Errorf("%w: pca eigendecomposition did not converge", ErrSpec)
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, cols)
	var total float64
	for i := range order {
		order[i] = i
		total += math.Max(vals[i], 0)
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	ratio := make([]float64, cols)
	for i, o := range order {
		if total > 0 {
			ratio[i] = math.Max(vals[o], 0) / total
		}
	}
	if k == 0 {
		cum := 0.0
		for k < cols {
			cum += ratio[k]
			k++
			if cum > variance {
				break
			}
		}
	}
	p := &PCA{Mean: mean, K: k, Components: make([]float64, k*cols), ExplainedVarianceRatio: ratio[:k]}
	for i := range k {
		comp := p.Components[i*cols : (i+1)*cols]
		big := 0.0
		for j := range cols {
			comp[j] = vecs.At(j, order[i])
			if math.Abs(comp[j]) > math.Abs(big) {
				big = comp[j]
			}
		}
		if big < 0 {
			for j := range comp {
				comp[j] = -comp[j]
			}
		}
	}
	return p, nil
}
