package evaluator

import (
	"fmt"
	"slices"
	"strconv"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
)

// outcome is what evaluating a model on a frame computes.
type outcome struct {
	metrics   map[string]float64
	confusion *evaluatorv1.ConfusionMatrix
	drift     []*evaluatorv1.FeatureDrift
	rows      int64
	skipped   int // rows whose label the model never saw
}

// checkColumns names the first input (or the target) the frame lacks: an
// evaluation dataset must hold every column the signature needs.
func checkColumns(m *artifact.Model, f *dataset.Frame) error {
	for _, in := range m.Inputs() {
		if f.ColIndex(in) < 0 {
			return apierr.Invalid("dataset", "column %q that the model's signature needs is missing (the dataset has %v)", in, f.Names())
		}
	}
	if t := m.Proto.Target; t != "" && f.ColIndex(t) < 0 {
		return apierr.Invalid("dataset", "target column %q is missing (the dataset has %v)", t, f.Names())
	}
	return nil
}

// evaluateFrame predicts every row of f with m and scores the predictions
// against the target column: the task's metrics, the confusion matrix of
// a classifier, and the drift of each input against the training stats.
func evaluateFrame(m *artifact.Model, f *dataset.Frame) (*outcome, error) {
	if err := checkColumns(m, f); err != nil {
		return nil, err
	}
	if f.NumRows() == 0 {
		return nil, apierr.Invalid("dataset", "no rows to evaluate on")
	}
	k := m.NumOutputs()
	out := make([]float64, f.NumRows()*k)
	if err := m.NewPredictor().PredictFrame(f, out); err != nil {
		return nil, apierr.Invalid("dataset", "%v", err)
	}
	tc, err := f.Col(m.Proto.Target)
	if err != nil {
		return nil, apierr.Invalid("dataset", "%v", err)
	}
	o := &outcome{rows: int64(f.NumRows())}
	if m.IsClassifier() {
		err = o.classification(m.Labels(), tc, out, k)
	} else {
		err = o.regression(tc, out)
	}
	if err != nil {
		return nil, err
	}
	o.drift = driftOf(m.Proto.TrainingStats, f, m.Inputs())
	return o, nil
}

// classification scores k values per row (the probability of each label)
// against the target column; a target value matches a label as written
// or as the same number ("1" and "1.0").
func (o *outcome) classification(labels []string, tc *dataset.Column, out []float64, k int) error {
	index := make(map[string]int, 2*len(labels))
	for i, l := range labels {
		if x, err := strconv.ParseFloat(l, 64); err == nil {
			index[strconv.FormatFloat(x, 'g', -1, 64)] = i
		}
	}
	for i, l := range labels {
		index[l] = i
	}
	var yTrue []int
	var proba []float64
	for r := range tc.Len() {
		i, ok := index[tc.String(r)]
		if !ok {
			o.skipped++
			continue
		}
		yTrue = append(yTrue, i)
		proba = append(proba, out[r*k:(r+1)*k]...)
	}
	if len(yTrue) == 0 {
		return apierr.Invalid("dataset", "no row of column %q holds a class the model knows (%v)", tc.Name, labels)
	}
	if k == 1 { // a binary classifier may emit one probability
		p2 := make([]float64, 0, 2*len(yTrue))
		for _, p := range proba {
			p2 = append(p2, 1-p, p)
		}
		proba, k = p2, 2
	}
	if k != len(labels) {
		return fmt.Errorf("model emits %d outputs for %d labels", k, len(labels))
	}
	o.metrics = metrics.Classification(yTrue, proba, k)
	cm := metrics.ConfusionMatrix(yTrue, metrics.Argmax(proba, k), k)
	o.confusion = &evaluatorv1.ConfusionMatrix{Labels: slices.Clone(labels)}
	for _, row := range cm {
		o.confusion.Counts = append(o.confusion.Counts, row...)
	}
	return nil
}

func (o *outcome) regression(tc *dataset.Column, out []float64) error {
	if tc.Kind != dataset.Numeric {
		return apierr.Invalid("dataset", "target column %q is not numeric", tc.Name)
	}
	var y, pred []float64
	for r, v := range tc.Num {
		if tc.IsMissing(r) {
			o.skipped++
			continue
		}
		y, pred = append(y, v), append(pred, out[r])
	}
	if len(y) == 0 {
		return apierr.Invalid("dataset", "column %q has no values", tc.Name)
	}
	o.metrics = metrics.Regression(y, pred)
	return nil
}
