package train

import (
	"sort"

	mlv1 "github.com/bmaas/bmaas/api/bmaas/ml/v1"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
)

// assemble builds the artifact and evaluates it on every split through
// the artifact's own predictor, so the metrics cover exactly what serving
// will run.
func (j *job) assemble(est artifact.Estimator, cb Callbacks) (*artifact.Model, error) {
	meta := &mlv1.Model{
		Algorithm: j.spec.Algorithm, Target: j.spec.Target, Task: mlv1.Task_TASK_REGRESSION,
		Hyperparameters: j.params.Map(), Seed: j.spec.Seed,
	}
	if j.tgt.classify {
		meta.Task, meta.Labels = mlv1.Task_TASK_CLASSIFICATION, j.tgt.labels
	}
	cols := append(append([]string(nil), j.features...), j.spec.Target)
	trainCols, err := j.frames["train"].Select(cols...)
	if err != nil {
		return nil, err
	}
	meta.TrainingStats = trainCols.Stats(dataset.StatsOptions{})
	m, err := artifact.New(meta, j.pipe, est)
	if err != nil {
		return nil, err
	}
	p := m.NewPredictor()
	for _, split := range []string{"train", "validation", "test"} {
		f := j.frames[split]
		if f == nil {
			continue
		}
		out := make([]float64, f.NumRows()*m.NumOutputs())
		if err := p.PredictFrame(f, out); err != nil {
			return nil, err
		}
		var ms map[string]float64
		if j.tgt.classify {
			ms = metrics.Classification(ints(j.y[split]), out, m.NumOutputs())
		} else {
			ms = metrics.Regression(j.y[split], out)
		}
		names := make([]string, 0, len(ms))
		for n := range ms {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			meta.Metrics = append(meta.Metrics, &mlv1.Metric{Split: split, Name: n, Value: ms[n]})
		}
		cb.emit(Event{Final: true, Split: split, Metrics: ms})
	}
	return m, nil
}

// Metric returns a metric of the model, and whether it exists.
func Metric(m *artifact.Model, split, name string) (float64, bool) {
	for _, x := range m.Proto.Metrics {
		if x.Split == split && x.Name == name {
			return x.Value, true
		}
	}
	return 0, false
}
