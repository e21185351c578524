package metrics

// Regression returns every regression metric by name.
func Regression(y, pred []float64) map[string]float64 {
	return map[string]float64{
		"rmse":               RMSE(y, pred),
		"mae":                MAE(y, pred),
		"r2":                 R2(y, pred),
		"mape":               MAPE(y, pred),
		"explained_variance": ExplainedVariance(y, pred),
	}
}

// Classification returns every classification metric by name for k
// classes; proba is row-major n×k. For k == 2 the binary scores use class
// 1 as positive and are also reported; the macro, micro and weighted
// averages are always present.
func Classification(yTrue []int, proba []float64, k int) map[string]float64 {
	pred := Argmax(proba, k)
	out := map[string]float64{
		"accuracy": Accuracy(yTrue, pred),
		"log_loss": LogLoss(yTrue, proba, k),
	}
	for name, avg := range map[string]Average{"macro": Macro, "micro": Micro, "weighted": Weighted} {
		s := PrecisionRecallF1(yTrue, pred, k, avg, 1)
		out["precision_"+name], out["recall_"+name], out["f1_"+name] = s.Precision, s.Recall, s.F1
	}
	if k == 2 {
		s := PrecisionRecallF1(yTrue, pred, k, Binary, 1)
		out["precision"], out["recall"], out["f1"] = s.Precision, s.Recall, s.F1
		score := make([]float64, len(yTrue))
		for i := range score {
			score[i] = proba[i*2+1]
		}
		out["roc_auc"] = ROCAUC(yTrue, score)
		out["pr_auc"] = AveragePrecision(yTrue, score)
	} else {
		out["roc_auc"] = ROCAUCOvR(yTrue, proba, k)
	}
	return out
}
