package preprocess

// Impute replaces NaN in column j with Fill[j] (when Fill[j] is not NaN).
type Impute struct{ Fill []float64 }

// OutCols implements Step.
func (s *Impute) OutCols(in int) int { return in }

// Apply implements Step.
func (s *Impute) Apply(src []float64, rows, cols int, dst []float64) {
	for r := range rows {
		i := r * cols
		for j := range cols {
			v := src[i+j]
			if v != v {
				v = s.Fill[j]
			}
			dst[i+j] = v
		}
	}
}

// Scale maps x to (x - Offset[j]) * Mul[j] for the numeric columns
// (Mul[j] == 1 and Offset[j] == 0 leave a column unchanged).
type Scale struct {
	Offset, Mul []float64
}

// OutCols implements Step.
func (s *Scale) OutCols(in int) int { return in }

// Apply implements Step.
func (s *Scale) Apply(src []float64, rows, cols int, dst []float64) {
	for r := range rows {
		x, y := src[r*cols:(r+1)*cols], dst[r*cols:(r+1)*cols]
		for j := range x {
			y[j] = (x[j] - s.Offset[j]) * s.Mul[j]
		}
	}
}

// OneHot replaces each column j with Sizes[j] > 0 (a category code) by
// Sizes[j] indicator columns; an unseen code (-1) gives all zeros. Other
// columns (Sizes[j] == 0) pass through.
type OneHot struct{ Sizes []int }

// OutCols implements Step.
func (s *OneHot) OutCols(in int) int {
	out := 0
	for _, n := range s.Sizes {
		out += max(n, 1)
	}
	return out
}

// Apply implements Step.
func (s *OneHot) Apply(src []float64, rows, cols int, dst []float64) {
	out := s.OutCols(cols)
	for r := range rows {
		x, y := src[r*cols:(r+1)*cols], dst[r*out:(r+1)*out]
		k := 0
		for j, n := range s.Sizes {
			if n == 0 {
				y[k] = x[j]
				k++
				continue
			}
			clear(y[k : k+n])
			if c := x[j]; c >= 0 && c < float64(n) {
				y[k+int(c)] = 1
			}
			k += n
		}
	}
}

// PCA projects centred rows on K principal components: out = (x - Mean)
// Componentsᵀ, Components being K×D row-major.
type PCA struct {
	Mean       []float64
	Components []float64
	K          int
	// ExplainedVarianceRatio per kept component (informative).
	ExplainedVarianceRatio []float64
}

// OutCols implements Step.
func (s *PCA) OutCols(int) int { return s.K }

// Apply implements Step.
func (s *PCA) Apply(src []float64, rows, cols int, dst []float64) {
	for r := range rows {
		x, y := src[r*cols:(r+1)*cols], dst[r*s.K:(r+1)*s.K]
		for k := range s.K {
			c := s.Components[k*cols : (k+1)*cols]
			var acc float64
			for j := range x {
				acc += (x[j] - s.Mean[j]) * c[j]
			}
			y[k] = acc
		}
	}
}
