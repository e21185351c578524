package gbdt

import (
	"slices"
	"sort"
)

// binner maps feature values to at most maxBins bins per feature:
// bin(x) = the first i with x <= Edges[i], or len(Edges).
type binner struct {
	edges [][]float64
}

func newBinner(x []float64, rows, d, maxBins int) *binner {
	b := &binner{edges: make([][]float64, d)}
	vals := make([]float64, rows)
	for j := range d {
		for r := range rows {
			vals[r] = x[r*d+j]
		}
		sort.Float64s(vals)
		uniq := slices.Compact(slices.Clone(vals))
		var edges []float64
		if len(uniq) <= maxBins {
			for i := 0; i+1 < len(uniq); i++ {
				edges = append(edges, uniq[i]+(uniq[i+1]-uniq[i])/2)
			}
		} else {
			for q := 1; q < maxBins; q++ {
				v := vals[q*rows/maxBins]
				if len(edges) == 0 || v > edges[len(edges)-1] {
					edges = append(edges, v)
				}
			}
		}
		b.edges[j] = edges
	}
	return b
}

// bin returns the binned matrix, column-major (feature j at j*rows).
func (b *binner) bin(x []float64, rows, d int) []uint8 {
	out := make([]uint8, rows*d)
	for j := range d {
		e := b.edges[j]
		for r := range rows {
			out[j*rows+r] = uint8(sort.SearchFloat64s(e, x[r*d+j]))
		}
	}
	return out
}
