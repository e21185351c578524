package metrics

import "math"

// RMSE is the root mean squared error.
func RMSE(y, pred []float64) float64 { return math.Sqrt(MSE(y, pred)) }

// MSE is the mean squared error.
func MSE(y, pred []float64) float64 {
	var s float64
	for i := range y {
		d := y[i] - pred[i]
		s += d * d
	}
	return s / float64(len(y))
}

// MAE is the mean absolute error.
func MAE(y, pred []float64) float64 {
	var s float64
	for i := range y {
		s += math.Abs(y[i] - pred[i])
	}
	return s / float64(len(y))
}

// MAPE is the mean absolute percentage error as a fraction, with the
// denominator floored at machine epsilon as in scikit-learn.
func MAPE(y, pred []float64) float64 {
	var s float64
	for i := range y {
		s += math.Abs(y[i]-pred[i]) / math.Max(math.Abs(y[i]), 2.220446049250313e-16)
	}
	return s / float64(len(y))
}

// R2 is the coefficient of determination.
func R2(y, pred []float64) float64 {
	m := mean(y)
	var ssr, sst float64
	for i := range y {
		ssr += (y[i] - pred[i]) * (y[i] - pred[i])
		sst += (y[i] - m) * (y[i] - m)
	}
	if sst == 0 {
		if ssr == 0 {
			return 1
		}
		return 0
	}
	return 1 - ssr/sst
}

// ExplainedVariance is 1 - Var(y - pred) / Var(y).
func ExplainedVariance(y, pred []float64) float64 {
	res := make([]float64, len(y))
	for i := range y {
		res[i] = y[i] - pred[i]
	}
	vy := variance(y)
	if vy == 0 {
		if variance(res) == 0 {
			return 1
		}
		return 0
	}
	return 1 - variance(res)/vy
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func variance(x []float64) float64 {
	m := mean(x)
	var s float64
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return s / float64(len(x))
}
