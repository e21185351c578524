package linear

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// FitLeastSquares fits y ≈ x·w + b by QR on the centred data (b is not
// penalised). alpha > 0 adds the ridge penalty alpha·|w|². A rank-deficient
// design with alpha == 0 is ErrSingular naming the first dependent column
// from names (which may be nil).
func FitLeastSquares(x []float64, rows, d int, y []float64, alpha float64, names []string) (*Model, error) {
	if rows == 0 || d == 0 {
		return nil, fmt.Errorf("least squares: empty design (%d×%d)", rows, d)
	}
	if alpha < 0 || math.IsNaN(alpha) {
		return nil, fmt.Errorf("least squares: alpha %v < 0", alpha)
	}
	xm := make([]float64, d)
	for r := range rows {
		for j := range d {
			xm[j] += x[r*d+j]
		}
	}
	var ym float64
	for _, v := range y[:rows] {
		ym += v
	}
	for j := range xm {
		xm[j] /= float64(rows)
	}
	ym /= float64(rows)
	n := rows
	if alpha > 0 {
		n += d
	}
	if n < d {
		return nil, fmt.Errorf("least squares: %w: %d rows for %d features (use alpha > 0)", ErrSingular, rows, d)
	}
	a := mat.NewDense(n, d, nil)
	b := mat.NewDense(n, 1, nil)
	for r := range rows {
		for j := range d {
			a.Set(r, j, x[r*d+j]-xm[j])
		}
		b.Set(r, 0, y[r]-ym)
	}
	if alpha > 0 {
		s := math.Sqrt(alpha)
		for j := range d {
			a.Set(rows+j, j, s)
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var rm mat.Dense
	qr.RTo(&rm)
	maxDiag := 0.0
	for j := range d {
		maxDiag = math.Max(maxDiag, math.Abs(rm.At(j, j)))
	}
	for j := range d {
		if math.Abs(rm.At(j, j)) <= 1e-10*maxDiag || maxDiag == 0 {
			col := fmt.Sprintf("%d", j+1)
			if j < len(names) {
				col = fmt.Sprintf("%q", names[j])
			}
			return nil, fmt.Errorf("least squares: %w: column %s is constant or a linear combination of earlier columns; set alpha > 0 for ridge", ErrSingular, col)
		}
	}
	var w mat.Dense
	if err := qr.SolveTo(&w, false, b); err != nil {
		return nil, fmt.Errorf("least squares: %w: %v", ErrSingular, err)
	}
	m := &Model{Features: d, Coef: make([]float64, d), Intercept: []float64{ym}, Link: Identity}
	for j := range d {
		m.Coef[j] = w.At(j, 0)
		m.Intercept[0] -= m.Coef[j] * xm[j]
	}
	return m, nil
}
