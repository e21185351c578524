package search

import "math"

// Branin is the Branin-Hoo function on x in [-5, 10], y in [0, 15]; its
// minimum is 0.397887, reached at three points. Benchmarks use it as an
// objective to minimise.
func Branin(x, y float64) float64 {
	a, b, c := 1.0, 5.1/(4*math.Pi*math.Pi), 5/math.Pi
	r, s, t := 6.0, 10.0, 1/(8*math.Pi)
	return a*math.Pow(y-b*x*x+c*x-r, 2) + s*(1-t)*math.Cos(x) + s
}
